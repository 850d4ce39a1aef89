"""What one unauthenticated request can leave in Redis, and how long its values may be.

Only the parameters the proxy reads are kept (proxy.oauth.authorize_checks
.PARAMETER_LIMITS), each bounded; unknown ones are dropped, longer values are
refused. Under ``noeviction`` (docs/deploy.md) every stored byte counts: the
records are measured on the real Redis for the worst request a client can send
(the largest form body the proxy takes, every known value at its limit).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from proxy.app import MAX_BODY
from proxy.oauth.authorize_checks import PARAMETER_LIMITS
from proxy.store.keys import record_key
from tests.flows.harness import (
    ACR_C,
    APP,
    SERVER,
    SERVER_SECRET,
    World,
    WorldFactory,
    app_redirect_params,
    new_request,
    query_of,
)

# every stored record of one request stays under this many bytes; before the limits a
# request could park the whole 64 KiB body
RECORD_BOUND = 12 * 1024


def worst_case(client_id: str, **extra: str) -> dict[str, str]:
    """A request whose every free-text parameter is as long as allowed (and valid), with
    unknown parameters filling the rest of the largest body the proxy takes."""
    _, params = new_request(client_id=client_id)
    params.update(
        state="s" * PARAMETER_LIMITS["state"],
        nonce="n" * PARAMETER_LIMITS["nonce"],
        scope=" ".join(["openid"] * (PARAMETER_LIMITS["scope"] // 7)),
        acr_values=("urn:x " * PARAMETER_LIMITS["acr_values"])[: PARAMETER_LIMITS["acr_values"]]
        .strip(),
        prompt=" ".join(["login"] * (PARAMETER_LIMITS["prompt"] // 6)),
        login_hint="h" * PARAMETER_LIMITS["login_hint"],
        login_hint_token="t" * PARAMETER_LIMITS["login_hint_token"],
        binding_message="B" * PARAMETER_LIMITS["binding_message"],
    )
    params.update(extra)
    used = sum(len(k) + len(v) + 2 for k, v in params.items())
    junk = (MAX_BODY - used - 4096) // 1000
    params.update({f"unknown_{i}": "j" * 985 for i in range(junk)})
    return params


async def strlen(world: World, redis_url: str, kind: str, id: str) -> tuple[int, str]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        key = record_key(world.store.prefix, kind, id)
        value = await client.get(key)
        size = await client.strlen(key)
    finally:
        await client.aclose()
    assert value is not None, (kind, id)
    return size, value.decode()


async def test_a_pending_choice_keeps_only_bounded_known_parameters(
    world: World, redis_url: str
) -> None:
    proxy = world.proxy
    form = worst_case(APP)
    assert sum(len(k) + len(v) for k, v in form.items()) > 60_000
    resp = await proxy.http.post(f"{proxy.issuer}/authorize", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()  # post/redirect/get: to the picker's page
    resp = await proxy.see_other(resp)
    html = await resp.text()
    assert resp.status == 200, html
    link = next(part.split('"')[0] for part in html.split('href="')[1:])
    pick_id = link.rsplit("/", 2)[1]
    size, record = await strlen(world, redis_url, "pick", pick_id)
    assert size < RECORD_BOUND, size
    assert "unknown_" not in record
    # the login it starts: the transaction is bounded the same way
    picked = await proxy.http.get(link, allow_redirects=False)
    assert picked.status == 302
    location = picked.headers["Location"]
    assert len(location) < RECORD_BOUND
    size, record = await strlen(world, redis_url, "txn", query_of(location)["state"])
    assert size < RECORD_BOUND, size


async def test_a_pushed_request_keeps_only_bounded_known_parameters(
    world: World, redis_url: str
) -> None:
    proxy = world.proxy
    form = worst_case(SERVER, acr_values=ACR_C)
    resp = await proxy.post("/par", form, auth=(SERVER, SERVER_SECRET))
    body: dict[str, Any] = await resp.json()
    assert resp.status == 201, body
    handle = body["request_uri"].rsplit(":", 1)[1]
    size, record = await strlen(world, redis_url, "par", handle)
    assert size < RECORD_BOUND, size
    assert "unknown_" not in record and "client_secret" not in record


OVERSIZED = ["nonce", "scope", "acr_values", "prompt", "login_hint", "login_hint_token",
             "resource", "code_challenge"]  # fmt: skip


@pytest.mark.parametrize("name", OVERSIZED)
async def test_an_oversized_value_is_refused(world_factory: WorldFactory, name: str) -> None:
    world: World = await world_factory(ciba=True)
    proxy = world.proxy
    value = "x" * (PARAMETER_LIMITS[name] + 1)
    # at /authorize, once the redirect_uri is verified: a redirect, which does not echo it
    resp, login = await proxy.authorize(**{name: value})
    assert resp.status == 302, await resp.text()
    params = app_redirect_params(resp)
    assert (params["error"], params["state"]) == ("invalid_request", login.state)
    assert params["error_description"] == f"{name} is too long"
    assert len(resp.headers["Location"]) < 1024
    # at /par: 400 JSON, nothing stored
    _, form = new_request(client_id=SERVER, **{"acr_values": ACR_C, name: value})
    pushed = await proxy.post("/par", form, auth=(SERVER, SERVER_SECRET))
    assert pushed.status == 400
    assert (await pushed.json())["error"] == "invalid_request"
    # no bank heard of it
    assert not [r for r in world.ciba.requests if r.path == "/bc-authorize"]
    assert not [r for r in world.bank_a.requests if r.path == "/authorize"]


async def test_an_oversized_state_is_an_error_page(world: World) -> None:
    """The state goes back in every error redirect: one too long to echo is answered
    with an HTML page, never a 302 carrying it."""
    resp, _ = await world.proxy.authorize(state="s" * (PARAMETER_LIMITS["state"] + 1))
    assert resp.status == 400
    assert "Location" not in resp.headers
    text = await resp.text()
    assert "<code>invalid_request</code>" in text and "state is too long" in text
    # the largest allowed state still works
    login = await world.proxy.login(state="s" * PARAMETER_LIMITS["state"])
    assert login.params["state"] == "s" * PARAMETER_LIMITS["state"]
