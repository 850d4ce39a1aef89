"""``app2app-proxy keys generate``: a private signing JWK with a kid."""

from __future__ import annotations

from jwcrypto import jwk

ALGS = ("ES256", "EdDSA", "RS256")


def generate_signing_key(alg: str = "ES256") -> jwk.JWK:
    if alg == "ES256":
        key = jwk.JWK.generate(kty="EC", crv="P-256")
    elif alg == "EdDSA":
        key = jwk.JWK.generate(kty="OKP", crv="Ed25519")
    elif alg == "RS256":
        key = jwk.JWK.generate(kty="RSA", size=3072)
    else:
        raise ValueError(f"unsupported alg {alg!r}; use one of {', '.join(ALGS)}")
    params = key.export(private_key=True, as_dict=True)
    # RFC 7638 thumbprint as kid: stable, and unique per key
    params.update(kid=key.thumbprint(), alg=alg, use="sig")
    return jwk.JWK(**params)
