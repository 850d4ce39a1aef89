"""What a whole login leaves in Redis: hashes for keys, encrypted bank tokens, TTLs."""

from __future__ import annotations

import json

import jwt
import redis.asyncio as redis
from jwcrypto import jwe, jwk

from proxy.model.records import Grant
from proxy.model.tokens import ACCESS_TOKEN, b64url, grant_of
from proxy.store.keys import record_key
from tests.flows.harness import RS_BANK, RS_PLAIN, World


async def test_redis_holds_no_token_and_nothing_without_ttl(world: World) -> None:
    login = await world.proxy.login()
    tokens = await (await world.proxy.exchange(login)).json()
    refreshed = await (await world.proxy.refresh(tokens["refresh_token"])).json()
    bank = await world.proxy.introspect(refreshed["access_token"], rs=RS_BANK)
    bank_refresh = next(r for r in reversed(world.bank_a.requests) if r.path == "/token")
    secrets = [login.code, tokens["access_token"], tokens["refresh_token"],
               refreshed["access_token"], refreshed["refresh_token"],
               bank["bank_access_token"], bank_refresh.form.get("code", "")]
    client = redis.Redis.from_url(world.store.url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{world.store.prefix}*")]
        assert len(keys) >= 6
        for key in keys:
            if await client.type(key) == b"zset":  # an index: grant ids (proxy.ops.revoke)
                value = b" ".join(await client.zrange(key, 0, -1)).decode()
            else:
                value = (await client.get(key) or b"").decode()
            ttl = await client.ttl(key)
            assert ttl > 0, f"{key!r} has no TTL"
            for secret in filter(None, secrets):
                assert secret not in key.decode() and secret not in value
    finally:
        await client.aclose()


async def test_bank_tokens_in_redis_are_a_jwe_another_library_opens(world: World) -> None:
    """The grant record keeps the bank's tokens as a standard JWE compact serialization
    (dir + A256GCM) under keys.token_encryption: jwcrypto opens what the proxy stored, and
    it holds the bank access token introspection hands a resource server."""
    tokens = await world.proxy.tokens()
    info = await world.proxy.introspect(tokens["access_token"], rs=RS_BANK)
    grant_id = grant_of(ACCESS_TOKEN, tokens["access_token"])
    assert grant_id is not None
    client = redis.Redis.from_url(world.store.url)
    try:
        raw = await client.get(record_key(world.store.prefix, Grant.kind, grant_id))
    finally:
        await client.aclose()
    assert raw is not None
    sealed = json.loads(raw)["bank_tokens"]
    token = jwe.JWE()
    key = jwk.JWK(kty="oct", k=b64url(world.proxy.config.keys.token_encryption))
    token.deserialize(sealed, key=key)
    assert token.jose_header == {"alg": "dir", "enc": "A256GCM", "kid": key.thumbprint()}
    assert json.loads(token.payload)["access_token"] == info["bank_access_token"]


async def test_jwt_introspection_response(world: World) -> None:
    tokens = await world.proxy.tokens()
    resp = await world.proxy.post("/introspect", {"token": tokens["access_token"]},
                                  auth=RS_PLAIN,
                                  headers={"Accept": "application/token-introspection+jwt"})
    assert resp.status == 200
    assert resp.content_type == "application/token-introspection+jwt"
    signed = await resp.text()
    header = jwt.get_unverified_header(signed)
    assert header["typ"] == "token-introspection+jwt"
    jwks = await (await world.proxy.http.get(f"{world.proxy.issuer}/jwks")).json()
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(signed, key.key, algorithms=[header["alg"]], audience=RS_PLAIN[0],
                        issuer=world.proxy.issuer)
    assert claims["iat"]
    assert claims["token_introspection"]["active"] is True
    assert claims["token_introspection"]["sub"]


async def test_refresh_returns_an_id_token_without_nonce(world: World) -> None:
    tokens = await world.proxy.tokens()
    pair = await (await world.proxy.refresh(tokens["refresh_token"])).json()
    first = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    again = jwt.decode(pair["id_token"], options={"verify_signature": False})
    assert "nonce" in first and "nonce" not in again
    assert (again["sub"], again["aud"], again["auth_time"]) == (
        first["sub"], first["aud"], first["auth_time"])


async def test_userinfo_with_the_token_in_a_form_body(world: World) -> None:
    tokens = await world.proxy.tokens()
    resp = await world.proxy.post("/userinfo", {"access_token": tokens["access_token"]})
    assert resp.status == 200
    assert (await resp.json())["name"] == "Alice Sandbox"
