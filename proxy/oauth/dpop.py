"""DPoP (RFC 9449): checking a proof, the server's nonces, the key's thumbprint (jkt).

``verify`` checks the request's ``DPoP`` header against one endpoint and returns the
RFC 7638 thumbprint of the proof's key, or None when the request carries no proof.
Its errors take the shape of the endpoint: the token endpoint's (400, RFC 9449 §5, §8)
or a protected resource's (401 with a ``WWW-Authenticate: DPoP`` challenge, §7.1, §9).

Nonces are stateless, so any instance accepts any other's: an HMAC of the current
time period under a key derived from ``keys.token_encryption`` (the key that encrypts),
valid in its period and the next one, and accepted under any configured key, so that
instances between two configs of a key rotation accept each other's.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import jwt
from aiohttp import web
from jwcrypto import jwk
from jwcrypto.common import JWException

from proxy.config.settings import ClientSettings
from proxy.model.tokens import b64url
from proxy.oauth.errors import OAuthError
from proxy.oauth.jose import DATE_CLAIMS, numeric_date
from proxy.oauth.services import Services
from proxy.observability.metrics import DPOP_REFUSALS, series

# RFC 9449 §4.2: alg is "an identifier for a JWS asymmetric digital signature algorithm
# ... It MUST NOT be none or an identifier for a symmetric algorithm"
ALGS = ("ES256", "EdDSA", "PS256", "RS256")
# FAPI 2.0 Security Profile §5.4.1: PS256, ES256 and EdDSA only
FAPI2_ALGS = ("ES256", "EdDSA", "PS256")
# what each alg needs of the key: (kty, crv or None)
_KEY_TYPES = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", None), "PS256": ("RSA", None),
              "RS256": ("RSA", None)}
# members that only a private (or symmetric) JWK has
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MIN_RSA_BITS = 2048
# RFC 9449 §11.1: "servers MUST only accept DPoP proofs for a limited time after their
# creation"; the note allows "an iat time in the reasonably near future"
IAT_WINDOW = 60
NONCE_PERIOD = 60
# §11.1: "a server that is tracking jti values should reject DPoP proof JWTs with
# unnecessarily large jti values"
MAX_JTI = 256
JTI_KIND = "dpop_jti"
_NONCE_LABEL = b"app2app-proxy dpop-nonce v1"


def algs_for(client: ClientSettings | None) -> tuple[str, ...]:
    """The proof algs a client may use: no RS256 under the fapi2 profile."""
    return FAPI2_ALGS if client is not None and client.profile == "fapi2" else ALGS


def thumbprint(access_token: str) -> str:
    """§4.2 ath: "the base64url encoding ... [of] the SHA-256 [SHS] hash of the ASCII
    encoding of the associated access token's value"."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


# --- nonces (RFC 9449 §8) ---------------------------------------------------------


def _nonce_for(secret: bytes, period: int) -> str:
    key = hmac.new(secret, _NONCE_LABEL, hashlib.sha256).digest()
    mac = hmac.new(key, str(period).encode(), hashlib.sha256).digest()
    return b64url(mac[:18])


def new_nonce(svc: Services) -> str:
    """§8: "Nonce values MUST be unpredictable": an HMAC under a server secret."""
    return _nonce_for(svc.config.keys.token_encryption, svc.now() // NONCE_PERIOD)


def nonce_is_fresh(svc: Services, nonce: object) -> bool:
    """A nonce of this period or the one before, from any instance (any configured key)."""
    if not isinstance(nonce, str):
        return False
    period = svc.now() // NONCE_PERIOD
    return any(
        hmac.compare_digest(nonce.encode(), _nonce_for(secret, p).encode())
        for secret in svc.config.keys.token_keys
        for p in (period, period - 1)
    )


# --- errors -------------------------------------------------------------------------


def _quoted(value: str) -> str:
    return value.replace("\\", "").replace('"', "'")


def error(
    svc: Services, code: str, description: str, *, resource: bool, algs: Sequence[str] = ALGS,
    detail: str = "",
) -> OAuthError:
    """An error about DPoP, with a fresh ``DPoP-Nonce`` (§8: "there MUST NOT be more than
    one DPoP-Nonce header"). At the token endpoint a 400 per RFC 6749 §5.2 (§5: "the
    authorization server issues an error response per Section 5.2 of [RFC6749] with
    invalid_dpop_proof"); at a protected resource a 401 challenge (§9: "Resource servers
    use an HTTP 401 (Unauthorized) error code with an accompanying WWW-Authenticate: DPoP
    value and DPoP-Nonce value")."""
    series(DPOP_REFUSALS, code).inc()
    headers = {"DPoP-Nonce": new_nonce(svc)}
    if not resource:
        return OAuthError(code, description, headers=headers, detail=detail)
    headers["WWW-Authenticate"] = (
        f'DPoP error="{code}", error_description="{_quoted(description)}", '
        f'algs="{" ".join(algs)}"'
    )
    return OAuthError(code, description, status=401, headers=headers, detail=detail)


# --- proofs (RFC 9449 §4.3) -----------------------------------------------------------


def _normalized(url: str) -> tuple[str, str, str]:
    """§4.3: "servers SHOULD employ syntax-based normalization ... and scheme-based
    normalization ... before comparing the htu claim": case of scheme and host, default
    port, empty path; query and fragment are ignored (check 9)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    default = {"http": 80, "https": 443}.get(scheme)
    host = (parts.hostname or "") + ("" if port in (None, default) else f":{port}")
    return scheme, host, parts.path or "/"


class _Refused(Exception):
    """A check of the proof failed; its description is fixed (it never quotes the proof)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


Refused = _Refused  # what public_key raises, for its other callers


def public_key(header: Mapping[str, Any], alg: str, noun: str = "proof") -> jwt.PyJWK:
    """§4.3 check 7: "The jwk JOSE Header Parameter does not contain a private key"; and
    the key must be of the kind ``alg`` signs with. ``noun`` names the JWT in the error
    descriptions: a DPoP "proof", or the "device key" of proxy.oauth.device_key (which
    takes its keys in the same header member and checks them the same way)."""
    params = header.get("jwk")
    if not isinstance(params, dict):
        raise _Refused(f"the {noun}'s jwk header is missing")
    if _PRIVATE_MEMBERS & params.keys():
        raise _Refused(f"the {noun}'s jwk must be a public key")
    kty, crv = _KEY_TYPES[alg]
    if params.get("kty") != kty or (crv is not None and params.get("crv") != crv):
        raise _Refused(f"the {noun}'s jwk is not a key of the kind its alg signs with")
    if kty == "OKP" and params.get("crv") not in ("Ed25519", "Ed448"):
        raise _Refused(f"the {noun}'s jwk is not an EdDSA key")
    key = jwt.PyJWK(params, algorithm=alg)
    if kty == "RSA" and int(key.key.key_size) < MIN_RSA_BITS:
        raise _Refused(f"the {noun}'s RSA key must have at least {MIN_RSA_BITS} bits")
    return key


async def verify(
    svc: Services,
    request: web.Request,
    *,
    path: str,
    algs: Sequence[str],
    access_token: str | None = None,
    resource: bool = False,
    target: tuple[str, str] | None = None,
) -> str | None:
    """Check the request's DPoP proof for ``{issuer}{path}``: the key's jkt, or None
    when the request has no ``DPoP`` header. The server requires its nonce in every
    proof; ``access_token``: the proof must carry its ``ath``. ``target``: the method and
    URL the proof must name instead of this request's (a gateway's check of the request
    it forwards, :mod:`proxy.endpoints.gateway`)."""
    method, url = target if target is not None else (request.method, svc.issuer + path)
    values = request.headers.getall("DPoP", [])
    if not values:
        return None

    def invalid(description: str, detail: str = "") -> OAuthError:
        return error(svc, "invalid_dpop_proof", description, resource=resource, algs=algs,
                     detail=detail)

    # check 1: "There is not more than one DPoP HTTP request header field."
    if len(values) > 1:
        raise invalid("send one DPoP header")
    proof = values[0]
    try:
        # check 2: "a single and well-formed JWT"
        header = jwt.get_unverified_header(proof)
        # check 4 (§11.5: "MUST verify that the typ field is dpop+jwt")
        if header.get("typ") != "dpop+jwt":
            raise _Refused("the proof's typ must be dpop+jwt")
        # check 5: alg "is not none, is supported by the application, and is acceptable
        # per local policy"
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in algs:
            raise _Refused(f"the proof's alg must be one of {' '.join(algs)}")
        key = public_key(header, alg)
        # checks 3 and 6: the required claims, and "The JWT signature verifies with the
        # public key contained in the jwk JOSE Header Parameter."
        claims = jwt.decode(
            proof, key.key, algorithms=[alg],
            options={"require": ["jti", "htm", "htu", "iat"], "verify_iat": False,
                     "verify_aud": False},
        )
        jkt = str(jwk.JWK(**header["jwk"]).thumbprint())
    except _Refused as exc:
        raise invalid(exc.description) from exc
    except (jwt.PyJWTError, JWException, ValueError, TypeError, KeyError) as exc:
        # a library's text may quote the proof: the client gets a fixed one
        raise invalid("the DPoP proof is not a JWT signed by the key in its jwk header, "
                      "or one of its claims is malformed",
                      detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    # RFC 7519 §2: exp, nbf and iat are NumericDates (pyjwt takes "1", true, and a
    # 400-digit exp as dates; Python's JSON reader takes NaN and Infinity)
    if any(name in claims and numeric_date(claims[name]) is None for name in DATE_CLAIMS):
        raise invalid("the proof's iat, exp and nbf must be numbers of seconds (NumericDate)")
    # check 8: "The htm claim matches the HTTP method of the current request."
    if claims["htm"] != method:
        raise invalid("the proof's htm is not this request's method")
    # check 9: htu "matches the HTTP URI ... ignoring any query and fragment parts"; the
    # URI is the configured issuer's, never built from the Host header (a gateway's
    # check: the URI of the request the authenticated gateway forwards)
    if not isinstance(claims["htu"], str) or (
        _normalized(claims["htu"]) != _normalized(url)
    ):
        raise invalid("the proof's htu is not this endpoint's URL")
    # check 11: "The creation time of the JWT ... is within an acceptable window"
    iat = numeric_date(claims["iat"])
    if iat is None or abs(svc.now() - iat) > IAT_WINDOW:
        raise invalid(f"the proof's iat must be within {IAT_WINDOW} seconds of now")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        raise invalid(f"the proof's jti must be a string of at most {MAX_JTI} characters")
    # check 12: "ensure that the value of the ath claim equals the hash of that access
    # token"
    if access_token is not None and not (
        isinstance(claims.get("ath"), str)
        and hmac.compare_digest(claims["ath"], thumbprint(access_token))
    ):
        raise invalid("the proof's ath is not the hash of the access token")
    # check 10 and §8: the server "responds to requests that do not include a nonce with
    # an HTTP 400 (Bad Request) error response ... using use_dpop_nonce as the error code
    # value"; §11.3: "A server MUST NOT accept any DPoP proofs without the nonce claim
    # when a DPoP nonce has been provided to the client."
    if not nonce_is_fresh(svc, claims.get("nonce")):
        server = "Resource server" if resource else "Authorization server"
        raise error(svc, "use_dpop_nonce", f"{server} requires nonce in DPoP proof",
                    resource=resource, algs=algs)
    # §11.1: "servers can store the jti value of each DPoP proof for the time window in
    # which the respective DPoP proof JWT would be accepted ... HTTP requests to the same
    # URI for which the jti value has been seen before would be declined."
    ttl = max(1, int(iat) + IAT_WINDOW - svc.now() + 1)
    seen = f"{jkt}\x00{path if target is None else url}\x00{jti}"
    if not await svc.store.add(JTI_KIND, seen, {"iat": int(iat)}, ttl):
        raise invalid("this DPoP proof was already used (jti)")
    return jkt
