"""All state is in Redis: instances are interchangeable; a Redis outage is a 503."""

from __future__ import annotations

import time
from collections.abc import Callable

from proxy.config.settings import StoreSettings
from tests.conftest import RedisServer
from tests.flows.harness import World, WorldFactory, app_redirect_params


async def test_two_instances_share_one_login(world: World) -> None:
    other = await world.another_proxy()
    resp, login = await world.proxy.authorize()
    at_bank = await world.proxy.http.get(resp.headers["Location"], allow_redirects=False)
    callback = at_bank.headers["Location"].replace(world.proxy.issuer, other.issuer)
    done = await other.http.get(callback, allow_redirects=False)
    login.params = app_redirect_params(done)
    tokens = await other.exchange(login)
    assert tokens.status == 200, await tokens.text()
    body = await tokens.json()
    assert (await world.proxy.introspect(body["access_token"]))["active"] is True


async def test_redis_stopped_then_back(
    world_factory: WorldFactory, redis_server_factory: Callable[[], RedisServer]
) -> None:
    server = redis_server_factory()
    world: World = await world_factory(store=StoreSettings(url=server.url, prefix="t:"))
    tokens = await world.proxy.tokens()
    server.stop()
    for path, form in (("/introspect", {"token": tokens["access_token"]}),
                       ("/token", {"grant_type": "refresh_token", "client_id": "merchant-ios",
                                   "refresh_token": tokens["refresh_token"]})):
        started = time.monotonic()
        resp = await world.proxy.post(path, form, auth=("orders-api", "orders-secret-" + "y" * 20)
                                      if path == "/introspect" else None)
        assert time.monotonic() - started < 1.0
        assert resp.status == 503
        assert resp.headers["Retry-After"]
        assert (await resp.json())["error"] == "temporarily_unavailable"
    resp, login = await world.proxy.authorize()
    assert resp.status == 302  # the app hears of it on its redirect URI, with its state
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == ("temporarily_unavailable", login.state)
    ready = await world.proxy.http.get(f"{world.proxy.issuer}/readyz")
    assert ready.status == 503
    health = await world.proxy.http.get(f"{world.proxy.issuer}/healthz")
    assert health.status == 200
    server.start()  # empty: what was stored is gone, but the proxy works again
    assert (await world.proxy.http.get(f"{world.proxy.issuer}/readyz")).status == 200
    again = await world.proxy.tokens()
    assert (await world.proxy.introspect(again["access_token"]))["active"] is True
