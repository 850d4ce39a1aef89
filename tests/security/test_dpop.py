"""DPoP (RFC 9449): bound tokens end to end, nonces, and every way a proof is refused."""

from __future__ import annotations

import json
import time
import uuid
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from multidict import CIMultiDict

from proxy.config.settings import Keys
from proxy.oauth import dpop
from tests.flows.harness import (
    APP_REDIRECT,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    DPOP_CLIENT,
    FAPI_CLIENT,
    FAPI_CLIENT_KEY,
    PUBLIC,
    RS_PLAIN,
    DPoPKey,
    Proxy,
    World,
    app_redirect_params,
    b64,
    new_request,
)

BOGUS_REFRESH = {"grant_type": "refresh_token", "refresh_token": "a2a_rt_unknown",
                 "client_id": PUBLIC}


async def _error(resp: Any) -> tuple[int, str]:
    return resp.status, (await resp.json())["error"]


async def _nonce(proxy: Proxy, key: DPoPKey) -> None:
    """Get a nonce the way a client does: a proof without one is answered with it."""
    resp = await proxy.post("/token", BOGUS_REFRESH,
                            headers={"DPoP": key.proof("POST", f"{proxy.issuer}/token")})
    assert await _error(resp) == (400, "use_dpop_nonce")
    key.remember(resp)


async def _userinfo(proxy: Proxy, token: str, proof: str | None,
                    scheme: str = "DPoP") -> Any:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    resp = await proxy.http.get(f"{proxy.issuer}/userinfo", headers=headers)
    await resp.read()
    return resp


async def test_public_client_gets_dpop_bound_tokens(world: World) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    tokens = await proxy.dpop_tokens(key)
    assert tokens["token_type"] == "DPoP"
    at = tokens["access_token"]
    # RFC 9449 §6.2: cnf.jkt and token_type DPoP in introspection, in both forms
    body = await proxy.introspect(at)
    assert body["active"] is True
    assert (body["cnf"], body["token_type"]) == ({"jkt": key.jkt}, "DPoP")
    signed = await proxy.post("/introspect", {"token": at}, auth=RS_PLAIN,
                              headers={"Accept": "application/token-introspection+jwt"})
    claims = jwt.decode(await signed.text(), options={"verify_signature": False})
    assert claims["token_introspection"]["cnf"] == {"jkt": key.jkt}
    assert claims["token_introspection"]["token_type"] == "DPoP"
    # the ID token is unchanged: at_hash of the access token
    assert "at_hash" in jwt.decode(tokens["id_token"], options={"verify_signature": False})
    # userinfo in the DPoP scheme, with the nonce the token endpoint handed out
    url = f"{proxy.issuer}/userinfo"
    ok = await _userinfo(proxy, at, key.proof("GET", url, access_token=at))
    assert ok.status == 200, await ok.text()
    assert (await ok.json())["sub"] and ok.headers["DPoP-Nonce"]
    # RFC 9449 §7.2: "MUST reject a DPoP-bound access token received as a bearer token"
    bearer = await _userinfo(proxy, at, None, scheme="Bearer")
    assert await _error(bearer) == (401, "invalid_token")
    assert 'error="invalid_token"' in bearer.headers["WWW-Authenticate"]
    form = await proxy.post("/userinfo", {"access_token": at})
    assert await _error(form) == (401, "invalid_token")
    # the refresh token is bound: without a proof it is refused (and not used up) ...
    unproven = await proxy.refresh(tokens["refresh_token"])
    assert await _error(unproven) == (400, "invalid_grant")
    # ... with the key it rotates, and the new access token is bound to that key
    refreshed = await proxy.dpop_post("/token", {"grant_type": "refresh_token",
                                                 "refresh_token": tokens["refresh_token"],
                                                 "client_id": PUBLIC}, key)
    assert refreshed.status == 200, await refreshed.text()
    pair = await refreshed.json()
    assert pair["token_type"] == "DPoP" and refreshed.headers["DPoP-Nonce"]
    assert (await proxy.introspect(pair["access_token"]))["cnf"] == {"jkt": key.jkt}
    # a retry inside refresh_grace with the same key gets the same pair
    again = await proxy.dpop_post("/token", {"grant_type": "refresh_token",
                                             "refresh_token": tokens["refresh_token"],
                                             "client_id": PUBLIC}, key)
    assert (await again.json())["access_token"] == pair["access_token"]


async def test_nonce_dance(world: World) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    login = await proxy.login()
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "client_id": PUBLIC, "code_verifier": login.verifier}
    first = await proxy.post("/token", form,
                             headers={"DPoP": key.proof("POST", f"{proxy.issuer}/token")})
    assert await _error(first) == (400, "use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    retry = await proxy.post("/token", form, headers={
        "DPoP": key.proof("POST", f"{proxy.issuer}/token", nonce=nonce)})
    assert retry.status == 200, await retry.text()
    assert (await retry.json())["token_type"] == "DPoP"
    assert retry.headers["DPoP-Nonce"]
    stale = await proxy.post("/token", BOGUS_REFRESH, headers={
        "DPoP": key.proof("POST", f"{proxy.issuer}/token", nonce="not-a-nonce-of-ours")})
    assert await _error(stale) == (400, "use_dpop_nonce")
    assert stale.headers["DPoP-Nonce"]


async def test_replayed_proof_is_refused(world: World) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    await _nonce(proxy, key)
    proof = key.proof("POST", f"{proxy.issuer}/token")
    first = await proxy.post("/token", BOGUS_REFRESH, headers={"DPoP": proof})
    assert await _error(first) == (400, "invalid_grant")  # the proof itself was accepted
    replay = await proxy.post("/token", BOGUS_REFRESH, headers={"DPoP": proof})
    assert await _error(replay) == (400, "invalid_dpop_proof")
    assert "jti" in (await replay.json())["error_description"]
    assert replay.headers["DPoP-Nonce"]


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return ".".join(b64(json.dumps(part).encode()) for part in (header, claims)) + "."


def _bad_proofs(issuer: str, key: DPoPKey) -> dict[str, str]:
    url = f"{issuer}/token"
    other = DPoPKey.generate()
    now = int(time.time())
    claims = {"jti": uuid.uuid4().hex, "htm": "POST", "htu": url, "iat": now,
              "nonce": key.nonce}
    return {
        "wrong htm": key.proof("GET", url),
        "wrong htu path": key.proof("POST", f"{issuer}/userinfo"),
        "wrong htu host": key.proof("POST", "https://attacker.example/token"),
        "stale iat": key.proof("POST", url, iat=now - 600),
        "future iat": key.proof("POST", url, iat=now + 600),
        "no jti": key.proof("POST", url, jti=None),
        "typ JWT": key.proof("POST", url, header={"typ": "JWT"}),
        "private key in jwk": key.proof(
            "POST", url, header={"jwk": key.key.export(private_key=True, as_dict=True)}),
        "jwk of another key": key.proof("POST", url, header={"jwk": other.public_jwk}),
        "alg none": _unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk},
                              claims),
        "HS256": jwt.encode(claims, "a-shared-secret-of-32-bytes-or-more!", algorithm="HS256",
                            headers={"typ": "dpop+jwt", "jwk": key.public_jwk}),
        "not a JWT": "not-a-jwt",
    }


@pytest.mark.parametrize("case", list(_bad_proofs("https://x", DPoPKey.generate())))
async def test_invalid_proofs_are_refused(world: World, case: str) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    await _nonce(proxy, key)
    proof = _bad_proofs(proxy.issuer, key)[case]
    resp = await proxy.post("/token", BOGUS_REFRESH, headers={"DPoP": proof})
    assert await _error(resp) == (400, "invalid_dpop_proof"), case
    assert resp.headers["DPoP-Nonce"]


async def test_htu_ignores_query_and_two_headers_are_refused(world: World) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    await _nonce(proxy, key)
    url = f"{proxy.issuer}/token"
    with_query = await proxy.post("/token", BOGUS_REFRESH,
                                  headers={"DPoP": key.proof("POST", url + "?x=1#f")})
    assert await _error(with_query) == (400, "invalid_grant")
    two = CIMultiDict([("DPoP", key.proof("POST", url)), ("DPoP", key.proof("POST", url))])
    resp = await proxy.http.post(url, data=BOGUS_REFRESH, headers=two)
    assert await _error(resp) == (400, "invalid_dpop_proof")


async def _fapi_refresh(proxy: Proxy, key: DPoPKey) -> Any:
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": FAPI_CLIENT, "sub": FAPI_CLIENT, "aud": proxy.issuer, "iat": now,
         "exp": now + 60, "jti": uuid.uuid4().hex},
        FAPI_CLIENT_KEY.export_to_pem(private_key=True, password=None), algorithm="ES256",
        headers={"kid": FAPI_CLIENT_KEY["kid"]})
    form = {"grant_type": "refresh_token", "refresh_token": "a2a_rt_unknown",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
    if key.nonce is None:
        await _nonce(proxy, key)
    return await proxy.post("/token", form,
                            headers={"DPoP": key.proof("POST", f"{proxy.issuer}/token")})


async def test_rs256_is_refused_for_a_fapi2_client_only(world: World) -> None:
    proxy = world.proxy
    rs256 = DPoPKey.generate("RS256")
    assert await _error(await _fapi_refresh(proxy, rs256)) == (400, "invalid_dpop_proof")
    # PS256 and ES256 are fine for it: the proof passes, the refresh token does not
    for alg in ("PS256", "ES256"):
        assert await _error(await _fapi_refresh(proxy, DPoPKey.generate(alg))) == (
            400, "invalid_grant")
    # a default-profile client may use RS256 (and EdDSA)
    for key in (rs256, DPoPKey.generate("EdDSA")):
        tokens = await proxy.dpop_tokens(key)
        assert tokens["token_type"] == "DPoP"
        assert (await proxy.introspect(tokens["access_token"]))["cnf"] == {"jkt": key.jkt}


async def test_refresh_with_another_key_is_refused(world: World) -> None:
    proxy, key, thief = world.proxy, DPoPKey.generate(), DPoPKey.generate()
    tokens = await proxy.dpop_tokens(key)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": PUBLIC}
    stolen = await proxy.dpop_post("/token", form, thief)
    assert await _error(stolen) == (400, "invalid_grant")
    # the refresh token was not used up by the thief's attempt
    ok = await proxy.dpop_post("/token", form, key)
    assert ok.status == 200, await ok.text()
    # and a retry of the rotation with the thief's key does not get the pair
    retry = await proxy.dpop_post("/token", form, thief)
    assert await _error(retry) == (400, "invalid_grant")


async def test_dpop_required_client_needs_a_proof(world: World) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    login = await proxy.login(client_id=DPOP_CLIENT)
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "client_id": DPOP_CLIENT,
            "code_verifier": login.verifier}
    bare = await proxy.post("/token", form)
    assert await _error(bare) == (400, "invalid_dpop_proof")
    key.nonce = bare.headers["DPoP-Nonce"]
    # the code was not consumed by the refused request
    resp = await proxy.post("/token", form,
                            headers={"DPoP": key.proof("POST", f"{proxy.issuer}/token")})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["token_type"] == "DPoP"
    # fapi2 implies DPoP too
    fapi = await _fapi_refresh(proxy, DPoPKey.generate())
    assert await _error(fapi) == (400, "invalid_grant")


async def test_confidential_client_gets_a_bound_access_token_and_an_unbound_refresh_token(
    world: World,
) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    login = await proxy.login(client_id=CONFIDENTIAL)
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "code_verifier": login.verifier}
    auth = (CONFIDENTIAL, CONFIDENTIAL_SECRET)
    resp = await proxy.dpop_post("/token", form, key, auth=auth)
    tokens = await resp.json()
    assert tokens["token_type"] == "DPoP"
    assert (await proxy.introspect(tokens["access_token"]))["cnf"] == {"jkt": key.jkt}
    # RFC 9449 §5: "Refresh tokens issued to confidential clients ... are not bound"
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    other = DPoPKey.generate()
    rotated = await proxy.dpop_post("/token", refresh, other, auth=auth)
    assert rotated.status == 200, await rotated.text()
    pair = await rotated.json()
    assert (await proxy.introspect(pair["access_token"]))["cnf"] == {"jkt": other.jkt}
    plain = await proxy.post("/token", {**refresh, "refresh_token": pair["refresh_token"]},
                             auth=auth)
    assert plain.status == 200, await plain.text()
    assert (await plain.json())["token_type"] == "Bearer"


async def test_nonce_from_another_instance_is_accepted(world: World) -> None:
    key = DPoPKey.generate()
    await _nonce(world.proxy, key)  # handed out by the first instance
    other = await world.another_proxy()
    login = await world.proxy.login()
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "client_id": PUBLIC, "code_verifier": login.verifier}
    # instances behind one load balancer share the configured issuer: htu is built from it
    assert other.config.issuer == world.proxy.issuer
    resp = await other.post("/token", form, headers={
        "DPoP": key.proof("POST", f"{world.proxy.issuer}/token")})
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["token_type"] == "DPoP"


async def test_userinfo_dpop_errors(world: World) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    tokens = await proxy.dpop_tokens(key)
    at, url = tokens["access_token"], f"{proxy.issuer}/userinfo"
    stranger = DPoPKey.generate()
    stranger.nonce = key.nonce  # a valid proof, of a key the token is not bound to
    cases = {
        "invalid_dpop_proof": [None, key.proof("GET", url),  # no proof; no ath
                               key.proof("GET", url, access_token="a2a_at_other"),
                               key.proof("POST", url, access_token=at)],
        "use_dpop_nonce": [key.proof("GET", url, access_token=at, nonce=None)],
        "invalid_token": [stranger.proof("GET", url, access_token=at)],
    }
    for error, proofs in cases.items():
        for proof in proofs:
            resp = await _userinfo(proxy, at, proof)
            assert await _error(resp) == (401, error), (error, proof)
            # RFC 9449 §7.1 and §9: a DPoP challenge, and a nonce to use next
            challenge = resp.headers["WWW-Authenticate"]
            assert challenge.startswith(f'DPoP error="{error}"') and "algs=" in challenge
            assert resp.headers["DPoP-Nonce"]
    # an unbound (Bearer) token is not accepted in the DPoP scheme
    bearer_tokens = await proxy.tokens()
    plain = bearer_tokens["access_token"]
    resp = await _userinfo(proxy, plain, key.proof("GET", url, access_token=plain))
    assert await _error(resp) == (401, "invalid_token")
    unknown = await _userinfo(proxy, "a2a_at_unknown", key.proof("GET", url))
    assert await _error(unknown) == (401, "invalid_token")


async def test_dpop_jkt_binds_the_code(world: World) -> None:
    proxy, key, other = world.proxy, DPoPKey.generate(), DPoPKey.generate()
    login = await proxy.login(dpop_jkt=key.jkt)
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "client_id": PUBLIC, "code_verifier": login.verifier}
    wrong = await proxy.dpop_post("/token", form, other)
    assert await _error(wrong) == (400, "invalid_grant")
    login = await proxy.login(dpop_jkt=key.jkt)
    form.update(code=login.code, code_verifier=login.verifier)
    ok = await proxy.dpop_post("/token", form, key)
    assert ok.status == 200, await ok.text()
    resp, _ = await proxy.authorize(dpop_jkt="too-short")
    assert resp.status == 302 and "error=invalid_request" in resp.headers["Location"]


async def test_discovery_lists_dpop_algs(world: World) -> None:
    meta = await (await world.proxy.http.get(
        f"{world.proxy.issuer}/.well-known/openid-configuration")).json()
    assert meta["dpop_signing_alg_values_supported"] == ["ES256", "EdDSA", "PS256", "RS256"]


class _Clock:
    """Just what proxy.oauth.dpop's nonces read of Services: the key and the time."""

    def __init__(self, key: bytes, *others: bytes) -> None:
        self.config = SimpleNamespace(keys=Keys(signing=(), token_encryption=key,
                                                token_decryption=others))
        self.t = 1_000_000_020

    def now(self) -> int:
        return self.t


def test_nonces_live_for_their_period_and_the_next() -> None:
    svc: Any = _Clock(b"k" * 32)
    nonce = dpop.new_nonce(svc)
    assert dpop.nonce_is_fresh(svc, nonce)
    svc.t += dpop.NONCE_PERIOD
    assert dpop.nonce_is_fresh(svc, nonce) and dpop.new_nonce(svc) != nonce
    svc.t += dpop.NONCE_PERIOD
    assert not dpop.nonce_is_fresh(svc, nonce)
    # another key (another deployment) does not accept it
    other: Any = _Clock(b"j" * 32)
    assert not dpop.nonce_is_fresh(other, dpop.new_nonce(svc))
    assert not dpop.nonce_is_fresh(svc, None)


def test_nonces_of_either_side_of_a_key_rotation_are_accepted() -> None:
    """Instances mid-rotation (keys.token_encryption [new, old] and [old, new]) make their
    nonces with different keys; each accepts the other's, as each holds both keys."""
    new, old = b"n" * 32, b"o" * 32
    rotated: Any = _Clock(new, old)
    not_yet: Any = _Clock(old, new)
    assert dpop.new_nonce(rotated) != dpop.new_nonce(not_yet)
    assert dpop.nonce_is_fresh(rotated, dpop.new_nonce(not_yet))
    assert dpop.nonce_is_fresh(not_yet, dpop.new_nonce(rotated))
    assert not dpop.nonce_is_fresh(_Clock(new), dpop.new_nonce(_Clock(old)))


async def test_dpop_proof_at_par_binds_the_code(world: World) -> None:
    # RFC 9449 §10.1: a DPoP header at the PAR endpoint binds the code like dpop_jkt
    key, other = DPoPKey.generate(), DPoPKey.generate()
    login, form = new_request()
    pushed = await world.proxy.dpop_post("/par", form, key)
    assert pushed.status == 201, await pushed.text()
    assert pushed.headers["DPoP-Nonce"]
    request_uri = (await pushed.json())["request_uri"]
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/authorize", allow_redirects=False,
                                      params={"client_id": PUBLIC, "request_uri": request_uri})
    final = await world.proxy.follow(resp)
    login.params = app_redirect_params(final)
    exchange = {"grant_type": "authorization_code", "code": login.code,
                "redirect_uri": APP_REDIRECT, "client_id": PUBLIC,
                "code_verifier": login.verifier}
    wrong = await world.proxy.dpop_post("/token", exchange, other)
    assert (wrong.status, (await wrong.json())["error"]) == (400, "invalid_grant")
    # a mismatching dpop_jkt beside the proof is refused at /par itself
    _, form = new_request(dpop_jkt=other.jkt)
    mismatch = await world.proxy.dpop_post("/par", form, key)
    assert (mismatch.status, (await mismatch.json())["error"]) == (400, "invalid_dpop_proof")


def _raw_proof(key: DPoPKey, payload: str) -> str:
    """A proof signed over ``payload`` as it is: JSON that json.dumps would not write
    (NaN, Infinity, 1e400, a 400-digit integer)."""
    private = jwt.PyJWK(key.key.export(private_key=True, as_dict=True), algorithm=key.alg)
    return jwt.api_jws.encode(payload.encode(), private.key, algorithm=key.alg,
                              headers={"typ": "dpop+jwt", "jwk": key.public_jwk})


# RFC 7519 §2: a NumericDate is "A JSON numeric value"; RFC 8259 §6: "Numeric values
# that cannot be represented in the grammar below (such as Infinity and NaN) are not
# permitted."
NOT_FINITE = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity",
              "1e400": "1e400", "huge int": "9" * 400, "true": "true",
              "string": '"1700000000"', "null": "null", "list": "[1]"}


@pytest.mark.parametrize("claim", ["iat", "exp", "nbf"])
@pytest.mark.parametrize("value", list(NOT_FINITE.values()), ids=list(NOT_FINITE))
async def test_a_numeric_claim_that_is_not_a_finite_number_is_invalid_dpop_proof(
    world: World, claim: str, value: str
) -> None:
    proxy, key = world.proxy, DPoPKey.generate()
    await _nonce(proxy, key)
    fields = {"jti": uuid.uuid4().hex, "htm": "POST", "htu": f"{proxy.issuer}/token",
              "iat": int(time.time()), "nonce": key.nonce}
    body = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in fields.items() if k != claim)
    proof = _raw_proof(key, "{" + body + f', "{claim}": {value}' + "}")
    resp = await proxy.post("/token", BOGUS_REFRESH, headers={"DPoP": proof})
    assert await _error(resp) == (400, "invalid_dpop_proof"), await resp.text()
    assert resp.headers["DPoP-Nonce"]
    # at a protected resource: the 401 challenge, never a 500
    at = (await proxy.dpop_tokens(key))["access_token"]
    fields.update(htm="GET", htu=f"{proxy.issuer}/userinfo", jti=uuid.uuid4().hex,
                  nonce=key.nonce, ath=dpop.thumbprint(at))
    body = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in fields.items() if k != claim)
    proof = _raw_proof(key, "{" + body + f', "{claim}": {value}' + "}")
    resp = await _userinfo(proxy, at, proof)
    assert await _error(resp) == (401, "invalid_dpop_proof"), await resp.text()
    assert resp.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')
