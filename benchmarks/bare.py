"""The ceilings: a bare aiohttp app doing only the Redis (and crypto) work of each endpoint.

    python -m benchmarks.bare --port P --redis URL --prefix P --key-pem FILE

- ``POST /introspect``: one GET of the key named by the form's ``token`` (a value of
  the size of what the proxy reads: the access token's record and its grant's),
  returned as the JSON body; also the ceiling of a DPoP-bound token's introspection;
- ``POST /introspect/bank``: the same, plus one AES-GCM decryption (``cryptography``) of
  a value the size of the grant's sealed bank tokens: a resource server with
  ``receive_bank_token: true``;
- ``POST /introspect/jwt``: the same GET, plus one ES256 signature (pyjwt) of the RFC 9701
  claims around it;
- ``GET /userinfo``: one GET of the key named by the bearer token, returned as the body;
- ``POST /token``: GETDEL of the code's key, ``json.loads`` of it, one ES256
  signature (pyjwt, an ID token's claims), one SET of an access-token-sized value;
- ``POST /token/refresh``: GETDEL of the refresh token's key and ``json.loads``, GET of its
  grant's, one AES-GCM decryption (the bank tokens' expiry), one ES256 signature (the ID
  token), one AES-GCM encryption (the rotated pair kept for a retry), and one pipeline of
  four SETs (grant, access token, refresh token, the pair), each value of the proxy's size;
- ``GET /authorize``: one SET of a transaction-sized value, then a 302;
- ``POST /floor``: the form read and a constant body of the introspection answer's size
  sent back: no Redis, no crypto. Not a ceiling: what aiohttp itself costs an
  introspection-shaped request, the part of every figure here no handler can shed;
- ``POST /floor/get``: the form read and one GET of the token's key through the proxy's
  own auto-pipelining (:class:`proxy.store.redis.Batcher`, what the proxy's store sends
  its commands with), its value sent back: the least an introspection that reads Redis
  can do here, no crypto, no checks, no log line.

No middleware, no logging: what aiohttp, redis-py and the crypto cost at the least.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import BlockingConnectionPool, Redis

from proxy.ops.serving import event_loop
from proxy.store.redis import Batcher

REDIS = web.AppKey("redis", Redis)
KEY = web.AppKey("key", object)
PREFIX = web.AppKey("prefix", str)
SIZES = web.AppKey("sizes", dict)
AEAD = web.AppKey("aead", AESGCM)
FLOOR = web.AppKey("floor", bytes)  # the floor's answer
BATCHER = web.AppKey("batcher", Batcher)  # the floor's GET
SEALED = web.AppKey("sealed", tuple)  # (iv, ciphertext + tag, aad) of the bank tokens' size
# the AAD of a sealed value: the JWE's encoded protected header, as the proxy uses it
AAD = b"eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0"


async def introspect(request: web.Request) -> web.Response:
    form = await request.post()
    raw = await request.app[REDIS].get(f"{request.app[PREFIX]}at:{form['token']!s}")
    if raw is None:
        return web.json_response({"active": False})
    return web.Response(body=raw, content_type="application/json")


async def floor(request: web.Request) -> web.Response:
    await request.post()
    return web.Response(body=request.app[FLOOR], content_type="application/json")


async def floor_get(request: web.Request) -> web.Response:
    form = await request.post()
    raw = await request.app[BATCHER].send("GET", f"{request.app[PREFIX]}at:{form['token']!s}")
    return web.Response(body=raw or request.app[FLOOR], content_type="application/json")


async def introspect_bank(request: web.Request) -> web.Response:
    form = await request.post()
    app = request.app
    raw = await app[REDIS].get(f"{app[PREFIX]}at:{form['token']!s}")
    if raw is None:
        return web.json_response({"active": False})
    iv, sealed, aad = app[SEALED]
    app[AEAD].decrypt(iv, sealed, aad)
    return web.Response(body=raw, content_type="application/json")


async def introspect_jwt(request: web.Request) -> web.Response:
    form = await request.post()
    app = request.app
    raw = await app[REDIS].get(f"{app[PREFIX]}at:{form['token']!s}")
    if raw is None:
        return web.json_response({"active": False})
    signed = jwt.encode(
        {"iss": "http://127.0.0.1", "aud": "orders-api", "iat": int(time.time()),
         "token_introspection": raw.decode() if isinstance(raw, bytes) else raw},
        app[KEY], algorithm="ES256",  # type: ignore[arg-type]
        headers={"kid": "bare", "typ": "token-introspection+jwt"},
    )
    return web.Response(text=signed, content_type="application/token-introspection+jwt")


async def userinfo(request: web.Request) -> web.Response:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    raw = await request.app[REDIS].get(f"{request.app[PREFIX]}at:{token}")
    if raw is None:
        return web.json_response({"error": "invalid_token"}, status=401)
    return web.Response(body=raw, content_type="application/json")


async def token(request: web.Request) -> web.Response:
    form = await request.post()
    app = request.app
    raw = await app[REDIS].getdel(f"{app[PREFIX]}code:{form['code']!s}")
    if raw is None:
        return web.json_response({"error": "invalid_grant"}, status=400)
    record = json.loads(raw)
    now = int(time.time())
    id_token = jwt.encode(
        {"iss": "http://127.0.0.1", "sub": record["grant_id"], "aud": record["client_id"],
         "iat": now, "exp": now + 300, "nonce": "n" * 22},
        app[KEY], algorithm="ES256", headers={"kid": "bare"},  # type: ignore[arg-type]
    )
    access_token = "a2a_at_" + secrets.token_urlsafe(32)
    await app[REDIS].set(f"{app[PREFIX]}at:{access_token}", "x" * app[SIZES]["at"], ex=300)
    return web.json_response({"access_token": access_token, "token_type": "Bearer",
                              "expires_in": 300, "id_token": id_token},
                             headers={"Cache-Control": "no-store"})


async def refresh(request: web.Request) -> web.Response:
    form = await request.post()
    app = request.app
    prefix, sizes = app[PREFIX], app[SIZES]
    raw = await app[REDIS].getdel(f"{prefix}rt:{form['refresh_token']!s}")
    if raw is None:
        return web.json_response({"error": "invalid_grant"}, status=400)
    record = json.loads(raw)
    grant = await app[REDIS].get(f"{prefix}grant:{record['grant_id']}")
    if grant is None:
        return web.json_response({"error": "invalid_grant"}, status=400)
    iv, sealed, aad = app[SEALED]
    app[AEAD].decrypt(iv, sealed, aad)
    now = int(time.time())
    id_token = jwt.encode(
        {"iss": "http://127.0.0.1", "sub": record["grant_id"], "aud": "merchant-ios",
         "iat": now, "exp": now + 300, "at_hash": "h" * 22},
        app[KEY], algorithm="ES256", headers={"kid": "bare"},  # type: ignore[arg-type]
    )
    access_token = "a2a_at_" + secrets.token_urlsafe(48)
    refresh_token = "a2a_rt_" + secrets.token_urlsafe(32)
    body = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300,
            "scope": "openid profile offline_access", "id_token": id_token,
            "refresh_token": refresh_token}
    app[AEAD].encrypt(os.urandom(12), json.dumps(body).encode(), AAD)
    async with app[REDIS].pipeline(transaction=False) as pipe:
        pipe.set(f"{prefix}grant:{record['grant_id']}", grant, ex=3600)
        pipe.set(f"{prefix}at:{access_token}", "x" * sizes["at"], ex=300)
        pipe.set(f"{prefix}rt:{refresh_token}", "x" * sizes["rt"], ex=3600)
        pipe.set(f"{prefix}rt_next:{refresh_token}", "x" * sizes["pair"], ex=11)
        await pipe.execute()
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def authorize(request: web.Request) -> web.Response:
    app = request.app
    state = secrets.token_urlsafe(32)
    await app[REDIS].set(f"{app[PREFIX]}txn:{state}", "x" * app[SIZES]["txn"], ex=600)
    location = request.query.get("redirect_uri", "") + "?state=" + state
    raise web.HTTPFound(location + "&" + "x" * max(0, app[SIZES]["location"] - len(location)))


def create_app(redis_url: str, prefix: str, key_pem: bytes, sizes: dict[str, int]
               ) -> web.Application:  # fmt: skip
    app = web.Application()
    app[PREFIX] = prefix
    app[SIZES] = sizes
    app[FLOOR] = b'{"active":true,"x":"' + b"x" * max(0, sizes["at"] - 22) + b'"}'
    app[KEY] = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).prepare_key(key_pem)
    app[AEAD] = AESGCM(AESGCM.generate_key(256))
    iv = os.urandom(12)
    app[SEALED] = (iv, app[AEAD].encrypt(iv, b"x" * sizes["bank_tokens"], AAD), AAD)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=0.5)
        app[REDIS] = Redis.from_pool(pool)
        app[BATCHER] = Batcher(app[REDIS])
        yield
        await app[REDIS].aclose()

    app.cleanup_ctx.append(resources)
    app.router.add_post("/introspect", introspect)
    app.router.add_post("/introspect/bank", introspect_bank)
    app.router.add_post("/introspect/jwt", introspect_jwt)
    app.router.add_post("/floor", floor)
    app.router.add_post("/floor/get", floor_get)
    app.router.add_get("/userinfo", userinfo)
    app.router.add_post("/token", token)
    app.router.add_post("/token/refresh", refresh)
    app.router.add_get("/authorize", authorize)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--key-pem", required=True)
    parser.add_argument("--sizes", default='{"at": 1000, "txn": 1000, "location": 600, '
                        '"bank_tokens": 1400, "rt": 120, "pair": 2600}')
    parser.add_argument("--reuse-port", action="store_true")
    args = parser.parse_args()
    app = create_app(args.redis, args.prefix, Path(args.key_pem).read_bytes(),
                     json.loads(args.sizes))
    # the proxy's own event loop (uvloop): the ceiling is measured on the same footing
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None,
                reuse_port=args.reuse_port, loop=event_loop())


if __name__ == "__main__":
    main()
