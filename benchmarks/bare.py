"""The ceilings: a bare aiohttp app doing only the Redis work of each endpoint.

    python -m benchmarks.bare --port P --redis URL --prefix P --key-pem FILE

- ``POST /introspect``: one GET of the key named by the form's ``token`` (a value of
  the size of an access token record), returned as the JSON body;
- ``POST /token``: GETDEL of the code's key, ``json.loads`` of it, one ES256
  signature (pyjwt, an ID token's claims), one SET of an access-token-sized value;
- ``GET /authorize``: one SET of a transaction-sized value, then a 302.

No middleware, no logging: what aiohttp and redis-py cost at the least.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from proxy.ops.serving import event_loop

REDIS = web.AppKey("redis", Redis)
KEY = web.AppKey("key", object)
PREFIX = web.AppKey("prefix", str)
SIZES = web.AppKey("sizes", dict)


async def introspect(request: web.Request) -> web.Response:
    form = await request.post()
    raw = await request.app[REDIS].get(f"{request.app[PREFIX]}at:{form['token']!s}")
    if raw is None:
        return web.json_response({"active": False})
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
    app[KEY] = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).prepare_key(key_pem)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        pool = BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=0.5)
        app[REDIS] = Redis.from_pool(pool)
        yield
        await app[REDIS].aclose()

    app.cleanup_ctx.append(resources)
    app.router.add_post("/introspect", introspect)
    app.router.add_post("/token", token)
    app.router.add_get("/authorize", authorize)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--key-pem", required=True)
    parser.add_argument("--sizes", default='{"at": 1000, "txn": 1000, "location": 600}')
    parser.add_argument("--reuse-port", action="store_true")
    args = parser.parse_args()
    app = create_app(args.redis, args.prefix, Path(args.key_pem).read_bytes(),
                     json.loads(args.sizes))
    # the proxy's own event loop (uvloop): the ceiling is measured on the same footing
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None,
                reuse_port=args.reuse_port, loop=event_loop())


if __name__ == "__main__":
    main()
