"""Every way the bank side can fail ends as an error redirect: error, state, iss, no code."""

from __future__ import annotations

import time

import pytest

from tests.flows.harness import ACR_A, ACR_B, World, WorldFactory, app_redirect_params


async def failed_login(world: World, **overrides: str) -> dict[str, str]:
    resp, login = await world.proxy.authorize(**overrides)
    assert resp.status == 302
    final = await world.proxy.follow(resp)
    assert final.status == 302, await final.text()
    params = app_redirect_params(final)
    assert "code" not in params
    assert params["state"] == login.state
    assert params["iss"] == world.proxy.issuer
    return params


async def test_bank_denies(world: World) -> None:
    world.bank_a.deny = True
    params = await failed_login(world)
    assert params["error"] == "access_denied"


async def test_bank_times_out(world_factory: WorldFactory) -> None:
    world = await world_factory(bank_a_overrides={"timeout": 0.5})
    world.bank_a.token_delay = 3
    started = time.monotonic()
    params = await failed_login(world)
    assert params["error"] == "temporarily_unavailable"
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(
    "fault", ["wrong_key", "alg_none", "wrong_aud", "wrong_iss", "expired", "wrong_nonce"]
)
async def test_bad_bank_id_token(world: World, fault: str) -> None:
    world.bank_a.id_token_fault = fault
    params = await failed_login(world)
    assert params["error"] == "server_error"


async def test_callback_of_one_bank_receiving_the_other_banks_state(world: World) -> None:
    resp, login = await world.proxy.authorize(acr_values=ACR_B)
    bank_location = resp.headers["Location"]
    at_bank = await world.proxy.http.get(bank_location, allow_redirects=False)
    callback = at_bank.headers["Location"]
    assert "/callback/bank-b?" in callback
    # the attacker replays bank B's response at bank A's callback
    mixed = callback.replace("/callback/bank-b?", "/callback/bank-a?")
    resp = await world.proxy.http.get(mixed, allow_redirects=False)
    assert resp.status == 302
    params = app_redirect_params(resp)
    assert params["error"] == "invalid_request" and "code" not in params
    assert params["state"] == login.state
    assert world.bank_a.requests == [] or all(r.path != "/token" for r in world.bank_a.requests)
    assert all(r.path != "/token" for r in world.bank_b.requests)


async def test_bank_jwks_rotated_between_two_logins(world: World) -> None:
    await world.proxy.tokens(acr_values=ACR_A)
    world.bank_a.rotate_keys()
    body = await world.proxy.tokens(acr_values=ACR_A)
    assert body["access_token"]
    assert sum(r.path == "/jwks" for r in world.bank_a.requests) == 2


async def test_iss_mismatch_in_bank_response(world: World) -> None:
    resp, login = await world.proxy.authorize()
    at_bank = await world.proxy.http.get(resp.headers["Location"], allow_redirects=False)
    callback = at_bank.headers["Location"].replace("iss=http", "iss=https")
    resp = await world.proxy.http.get(callback, allow_redirects=False)
    params = app_redirect_params(resp)
    assert "code" not in params and params["error"]
    assert params["state"] == login.state
