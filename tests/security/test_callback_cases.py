"""Hostile or broken bank responses at /callback/{bank}.

Covered elsewhere (not repeated here):
- unknown state — tests/flows/test_errors.py::test_unknown_state_at_callback_is_a_page
- wrong iss — tests/flows/test_bank_failures.py::test_iss_mismatch_in_bank_response
- state arriving at another bank's callback —
  tests/flows/test_bank_failures.py::test_callback_of_one_bank_receiving_the_other_banks_state
- bank access_denied — tests/flows/test_bank_failures.py::test_bank_denies
- bad bank ID tokens end to end (bad signature, alg none, wrong aud/iss, expired, nonce
  mismatch) — tests/flows/test_bank_failures.py::test_bad_bank_id_token; HS256 signed
  with the bank's public key as the secret —
  tests/federation/test_idtoken.py::test_hs256_keyed_with_the_banks_public_key_is_refused;
  iat in the future —
  tests/federation/test_idtoken.py::test_claim_checks and ::test_leeway_applies_to_exp_and_iat;
  one JWKS refresh per cooldown under concurrent unknown kids —
  tests/federation/test_jwks.py::test_unknown_kid_refreshes_at_most_once_per_cooldown
"""

from __future__ import annotations

import asyncio

from proxy.config.settings import Lifetimes
from tests.flows.harness import World, WorldFactory, app_redirect_params


async def bank_redirect(world: World) -> str:
    """Run the login up to the bank's redirect to the proxy's callback; return its URL."""
    resp, _ = await world.proxy.authorize()
    bank = await world.proxy.http.get(resp.headers["Location"], allow_redirects=False)
    location: str = bank.headers["Location"]
    assert location.startswith(f"{world.proxy.issuer}/callback/bank-a?")
    return location


async def test_missing_state(world: World) -> None:
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/callback/bank-a?code=x",
                                      allow_redirects=False)
    assert resp.status == 400 and "Location" not in resp.headers
    assert "<code>invalid_request</code>" in await resp.text()


async def test_replayed_callback(world: World) -> None:
    callback = await bank_redirect(world)
    first = await world.proxy.http.get(callback, allow_redirects=False)
    assert first.status == 302 and app_redirect_params(first)["code"]
    again = await world.proxy.http.get(callback, allow_redirects=False)
    assert again.status == 400 and "Location" not in again.headers
    assert "already completed" in await again.text()


async def test_expired_state(world_factory: WorldFactory) -> None:
    world: World = await world_factory(lifetimes=Lifetimes(transaction=1))
    callback = await bank_redirect(world)
    await asyncio.sleep(2.1)
    resp = await world.proxy.http.get(callback, allow_redirects=False)
    assert resp.status == 400 and "Location" not in resp.headers
    assert "expired" in await resp.text()


async def test_unknown_kid_flood_fetches_the_bank_jwks_once_per_cooldown(
    world_factory: WorldFactory,
) -> None:
    world: World = await world_factory(bank_a_overrides={"jwks_cooldown": 30.0})
    await world.proxy.login()  # the key set is cached
    fetched = sum(1 for r in world.bank_a.requests if r.path == "/jwks")
    world.bank_a.id_token_fault = "unknown_kid"
    callbacks = [await bank_redirect(world) for _ in range(10)]
    results = await asyncio.gather(*(world.proxy.http.get(c, allow_redirects=False)
                                     for c in callbacks))
    for resp in results:
        params = app_redirect_params(resp)
        assert params["error"] == "server_error"
    refetched = sum(1 for r in world.bank_a.requests if r.path == "/jwks") - fetched
    assert refetched <= 1

