"""What the store holds sealed, and what happens when no configured key opens it.

A Redis dump hands out neither the proxy's PKCE verifier toward the bank nor a CIBA
``auth_req_id`` (they are sealed in the transaction record). A value sealed with a key
that is not in ``keys.token_encryption`` (a wrong key, or one removed too early) makes
what it sealed unusable: a clean OAuth answer and a log line naming the key's id, never
a 500. Instances in the middle of a key rotation read each other's values once every
one holds the new key (docs/key-rotation.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from typing import Any

import redis.asyncio
from structlog.testing import capture_logs

from proxy.config.keys import token_key_id
from proxy.config.settings import Lifetimes
from tests.flows.harness import (
    ACR_C,
    PUBLIC,
    RS_BANK,
    RS_PLAIN,
    Proxy,
    World,
    WorldFactory,
    app_redirect_params,
    run_proxy,
)
from tests.ports import free_port


async def redis_dump(world: World) -> str:
    """Every value the store holds for this world, as one text."""
    client = redis.asyncio.Redis.from_url(world.store.url, decode_responses=True)
    try:
        keys = [key async for key in client.scan_iter(match=f"{world.store.prefix}*")]
        values = await client.mget(keys) if keys else []
        return "\n".join(str(v) for v in values)
    finally:
        await client.aclose()


async def instance(world: World, *keys: bytes) -> Proxy:
    """Another instance of the world's proxy (same issuer, same Redis) whose
    keys.token_encryption is ``keys``: the first encrypts."""
    port = free_port()
    base = world.proxy.config
    config = dataclasses.replace(base, keys=dataclasses.replace(
        base.keys, token_encryption=keys[0], token_decryption=keys[1:]))
    await world.stack.enter_async_context(run_proxy(config, port))
    return Proxy(f"http://127.0.0.1:{port}", config, world.proxy.http)


async def tokens_via(world: World, proxy: Proxy) -> dict[str, Any]:
    """A whole login through ``proxy``, its bank callback too (the bank sends the browser
    to the configured issuer: the world's first instance)."""
    resp, login = await proxy.authorize()
    at_bank = await proxy.http.get(resp.headers["Location"], allow_redirects=False)
    callback = at_bank.headers["Location"].replace(world.proxy.issuer, proxy.issuer)
    login.params = app_redirect_params(await proxy.http.get(callback, allow_redirects=False))
    exchanged = await proxy.exchange(login)
    assert exchanged.status == 200, await exchanged.text()
    tokens: dict[str, Any] = await exchanged.json()
    return tokens


async def test_a_redis_dump_holds_no_code_verifier_and_no_auth_req_id(
    world_factory: WorldFactory,
) -> None:
    world: World = await world_factory(ciba=True)
    world.ciba.ciba_interval = 1
    proxy = world.proxy
    # a redirect login, waiting at the bank: its transaction holds the PKCE verifier
    resp, login = await proxy.authorize()
    at_bank = resp.headers["Location"]
    waiting = await redis_dump(world)
    final = await proxy.follow(resp)
    login.params = app_redirect_params(final)
    verifier = world.bank_a.last("/token").form["code_verifier"]
    assert len(verifier) >= 43 and verifier not in at_bank
    assert verifier not in waiting
    assert '"sealed":' in waiting and '"conn_data":{}' in waiting

    # a decoupled login the proxy has polled once: its transaction holds the auth_req_id
    resp, _ = await proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    handle = resp.headers["Location"].rsplit("/", 1)[1]
    status = await proxy.http.get(f"{proxy.issuer}/authorize/status/{handle}")
    assert (await status.json())["status"] == "pending"
    (auth_req_id,) = world.ciba.ciba_requests
    assert world.ciba.last("/token").form["auth_req_id"] == auth_req_id
    polled = await redis_dump(world)
    assert auth_req_id not in polled
    assert '"auth_req_id":""' in polled

    # and both logins still complete (the sealed parts are opened where needed)
    assert (await proxy.exchange(login)).status == 200
    world.ciba.ciba_approve()
    await asyncio.sleep(1.1)  # the bank's poll interval
    done = await proxy.http.get(f"{proxy.issuer}/resume/{handle}", allow_redirects=False)
    assert done.status == 302 and "code" in app_redirect_params(done)


async def test_an_instance_with_another_key_answers_cleanly_and_names_the_kid(
    world_factory: WorldFactory,
) -> None:
    """Instance B has a wrong keys.token_encryption: every value instance A sealed is of
    no use to it. Each endpoint that opens one answers as for a token or login that is no
    longer valid, and logs sealed_value_unreadable with A's kid."""
    world: World = await world_factory(ciba=True, lifetimes=Lifetimes(refresh_grace=10))
    a = world.proxy
    b = await instance(world, secrets.token_bytes(32))
    a_kid = token_key_id(a.config.keys.token_encryption)

    tokens = await a.tokens()
    rotated = await a.tokens()
    assert (await a.refresh(rotated["refresh_token"])).status == 200  # a pair sealed by A
    resp, _ = await a.authorize()  # a redirect login waiting at the bank
    callback = (await a.http.get(resp.headers["Location"], allow_redirects=False)
                ).headers["Location"]  # fmt: skip
    resp, _ = await a.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    handle = resp.headers["Location"].rsplit("/", 1)[1]

    with capture_logs() as logs:
        assert await b.introspect(tokens["access_token"], rs=RS_BANK) == {"active": False}
        # a server that is not given the bank's token needs nothing sealed
        assert (await b.introspect(tokens["access_token"], rs=RS_PLAIN))["active"] is True
        refreshed = await b.refresh(tokens["refresh_token"])
        assert (refreshed.status, (await refreshed.json())["error"]) == (400, "invalid_grant")
        retried = await b.refresh(rotated["refresh_token"])  # inside refresh_grace
        assert (retried.status, (await retried.json())["error"]) == (400, "invalid_grant")
        status = await b.http.get(f"{b.issuer}/authorize/status/{handle}")
        assert (status.status, (await status.json())["error"]) == (400, "invalid_request")
        back = await b.http.get(callback.replace(a.issuer, b.issuer), allow_redirects=False)
        assert back.status == 400 and "<code>invalid_request</code>" in await back.text()
    unreadable = [line for line in logs if line["event"] == "sealed_value_unreadable"]
    assert len(unreadable) >= 5
    assert {line["kid"] for line in unreadable} == {a_kid}
    assert {line["log_level"] for line in unreadable} == {"warning"}

    # A itself is unaffected: its refresh token was not used up by B's refusal
    assert (await a.refresh(tokens["refresh_token"])).status == 200


async def test_instances_in_a_key_rotation_read_each_others_values(
    world_factory: WorldFactory,
) -> None:
    """docs/key-rotation.md: first every instance gets the new key at the end of the list
    (it only decrypts), then every instance moves it to the front (it encrypts). An
    instance with the new key in front already writes what an instance without it
    cannot read: that is why the first step comes first."""
    world: World = await world_factory()
    old, new = world.proxy.config.keys.token_encryption, secrets.token_bytes(32)
    first_step = await instance(world, old, new)
    second_step = await instance(world, new, old)
    not_rolled_out = world.proxy  # [old]

    for writer in (not_rolled_out, first_step, second_step):
        tokens = await tokens_via(world, writer)
        for reader in (first_step, second_step):
            info = await reader.introspect(tokens["access_token"], rs=RS_BANK)
            assert info["active"] is True and info["bank_access_token"], (writer, reader)
        if writer is not second_step:
            info = await not_rolled_out.introspect(tokens["access_token"], rs=RS_BANK)
            assert info["active"] is True
    sealed_new = await tokens_via(world, second_step)
    assert await not_rolled_out.introspect(sealed_new["access_token"], rs=RS_BANK) == {
        "active": False}
    revoke = await second_step.post("/revoke", {"token": sealed_new["refresh_token"],
                                                "client_id": PUBLIC})
    assert revoke.status == 200
