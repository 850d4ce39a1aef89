"""The merchant's own apps (docs/app2app.md): App2App approval between them, device-key
bound, and OpenID Connect Native SSO. Whole paths on real Redis with real key pairs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import redis.asyncio as redis

from proxy.oauth.grants import IN_FLIGHT
from proxy.ops.revoke import revoke
from tests.flows.faults import Clock, FaultyStore, clock, faulty_store
from tests.flows.harness import APP_REDIRECT, PUBLIC, RS_BANK, World, WorldFactory
from tests.flows.own_apps import (
    SHOP,
    SHOP_REDIRECT,
    WALLET,
    DeviceKey,
    ShopRequest,
    approval_form,
    approve,
    challenge,
    exchange_form,
    own_apps,
    shop_redeems,
    wallet_login,
)

__all__ = ["clock", "faulty_store"]  # the fixtures


def claims_of(id_token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(id_token, options={"verify_signature": False})
    return claims


async def error_of(resp: Any) -> tuple[int, str]:
    return resp.status, (await resp.json())["error"]


async def shop_tokens_by_approval(world: World, key: DeviceKey, tokens: dict[str, Any],
                                  request: ShopRequest | None = None) -> dict[str, Any]:
    request = request or ShopRequest()
    resp = await approve(world.proxy, tokens, key, request)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    redeemed = await shop_redeems(world.proxy, answer["code"], request)
    assert redeemed.status == 200, await redeemed.text()
    body: dict[str, Any] = await redeemed.json()
    return body


# --- App2App approval -------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_the_shop_logs_in_through_the_wallet_without_the_bank(world: World,
                                                                    alg: str) -> None:
    own_apps(world)
    key = DeviceKey.generate(alg)
    wallet = await wallet_login(world.proxy, key)
    requests_at_bank = len(world.bank_a.requests)
    request = ShopRequest()
    resp = await approve(world.proxy, wallet, key, request)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["iss"] == world.proxy.issuer
    assert answer["redirect_to"].startswith(SHOP_REDIRECT + "?code=")
    shop = await shop_redeems(world.proxy, answer["code"], request)
    assert shop.status == 200, await shop.text()
    tokens = await shop.json()
    assert len(world.bank_a.requests) == requests_at_bank  # the bank was not asked
    wallet_id, shop_id = claims_of(wallet["id_token"]), claims_of(tokens["id_token"])
    # the same user, the original login's acr, level and auth_time; amr says how it came
    assert shop_id["aud"] == SHOP
    assert shop_id["sub"] == wallet_id["sub"]
    for claim in ("acr", "authentication_level", "auth_time"):
        assert shop_id[claim] == wallet_id[claim]
    assert shop_id["amr"] == [*wallet_id.get("amr", []), "app2app"]
    assert shop_id["name"] == wallet_id["name"]  # claims released by the shop's scope
    # a grant of the shop's own: it refreshes, and introspects as the shop's
    intro = await world.proxy.introspect(tokens["access_token"])
    assert (intro["active"], intro["client_id"], intro["sub"]) == (True, SHOP, wallet_id["sub"])
    refreshed = await world.proxy.refresh(tokens["refresh_token"], client_id=SHOP)
    assert refreshed.status == 200, await refreshed.text()


async def test_the_shop_gets_no_bank_token_unless_the_operator_shares_it(world: World
                                                                        ) -> None:  # fmt: skip
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    shop = await shop_tokens_by_approval(world, key, wallet)
    assert "bank_access_token" in await world.proxy.introspect(wallet["access_token"], RS_BANK)
    assert "bank_access_token" not in await world.proxy.introspect(shop["access_token"], RS_BANK)
    own_apps(world, share_bank_tokens=(SHOP,))
    wallet = await wallet_login(world.proxy, key)
    shop = await shop_tokens_by_approval(world, key, wallet)
    bank_token = (await world.proxy.introspect(wallet["access_token"], RS_BANK))[
        "bank_access_token"]
    assert (await world.proxy.introspect(shop["access_token"], RS_BANK))[
        "bank_access_token"] == bank_token


async def test_two_instances_share_the_approval(world: World) -> None:
    own_apps(world)
    other = await world.another_proxy()
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    request = ShopRequest()
    device_jwt = key.sign(await challenge(world.proxy), "approve")  # challenge on one
    resp = await other.post("/token", approval_form(wallet["refresh_token"], device_jwt,
                                                    request))  # approval on the other
    assert resp.status == 200, await resp.text()
    shop = await shop_redeems(world.proxy, (await resp.json())["code"], request)
    assert shop.status == 200, await shop.text()


async def test_revoking_the_wallet_keeps_the_shop_and_revoke_sub_ends_both(world: World
                                                                          ) -> None:  # fmt: skip
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    shop = await shop_tokens_by_approval(world, key, wallet)
    resp = await world.proxy.post("/revoke", {"token": wallet["refresh_token"],
                                              "client_id": WALLET})
    assert resp.status == 200
    assert (await world.proxy.introspect(wallet["access_token"]))["active"] is False
    assert (await world.proxy.introspect(shop["access_token"]))["active"] is True
    # a new wallet login approves again; the operator's revoke --sub ends every login of
    # the user, the wallet's and the shop's (one sub: one sector)
    wallet = await wallet_login(world.proxy, key)
    second = await shop_tokens_by_approval(world, key, wallet)
    sub = claims_of(wallet["id_token"])["sub"]
    assert claims_of(second["id_token"])["sub"] == sub
    result = await revoke(world.store, "sub", sub)
    assert result.grants == 3
    for tokens in (wallet, shop, second):
        assert (await world.proxy.introspect(tokens["access_token"]))["active"] is False


# --- what an approval refuses ---------------------------------------------------------------


async def test_a_login_without_a_bound_key_cannot_approve(world: World) -> None:
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, None)
    resp = await approve(world.proxy, wallet, key, ShopRequest())
    assert await error_of(resp) == (400, "invalid_grant")


async def test_another_key_cannot_approve(world: World) -> None:
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    resp = await approve(world.proxy, wallet, DeviceKey.generate(), ShopRequest())
    assert await error_of(resp) == (400, "invalid_grant")
    body = await resp.json()
    assert body["error_description"] == "the device key is not the one bound to this login"


async def test_challenges_are_single_use_and_expire(world: World) -> None:
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    device_jwt = key.sign(await challenge(world.proxy), "approve")
    form = approval_form(wallet["refresh_token"], device_jwt, ShopRequest())
    assert (await world.proxy.post("/token", form)).status == 200
    replay = await world.proxy.post("/token", form)  # the same approval again
    assert await error_of(replay) == (400, "invalid_grant")
    assert (await replay.json())["error_description"] == "the challenge was already used"
    unknown = key.sign("a2a_ch_" + "x" * 43, "approve")
    resp = await world.proxy.post("/token", approval_form(wallet["refresh_token"], unknown,
                                                          ShopRequest()))
    assert (await resp.json())["error_description"] == "the challenge is unknown or expired"
    # an expired one: lifetimes.challenge of 1 second
    config = world.proxy.config
    world.reload(dataclasses.replace(config, lifetimes=dataclasses.replace(
        config.lifetimes, challenge=1)))
    stale = key.sign(await challenge(world.proxy), "approve")
    await asyncio.sleep(1.2)
    resp = await world.proxy.post("/token", approval_form(wallet["refresh_token"], stale,
                                                          ShopRequest()))
    assert (await resp.json())["error_description"] == "the challenge is unknown or expired"


async def test_a_challenge_is_for_the_client_that_asked_for_it(world: World) -> None:
    own_apps(world)
    # a challenge only for approvers
    resp = await world.proxy.post("/challenge", {"client_id": PUBLIC})
    assert await error_of(resp) == (400, "unauthorized_client")
    resp = await world.proxy.post("/challenge", {"client_id": "nobody"})
    assert await error_of(resp) == (401, "invalid_client")


@pytest.mark.parametrize(("change", "error"), [
    ({"app2app_client_id": PUBLIC}, (400, "unauthorized_client")),  # not in approve_for
    ({"app2app_client_id": None}, (400, "invalid_request")),
    ({"app2app_redirect_uri": APP_REDIRECT}, (400, "invalid_request")),  # not the shop's
    ({"app2app_redirect_uri": SHOP_REDIRECT + "/"}, (400, "invalid_request")),  # exact
    ({"code_challenge": None}, (400, "invalid_request")),
    ({"code_challenge_method": "plain"}, (400, "invalid_request")),
    ({"code_challenge": "short"}, (400, "invalid_request")),
    ({"jwt": None}, (400, "invalid_request")),
    ({"refresh_token": "a2a_rt_unknown"}, (400, "invalid_grant")),
    ({"scope": "openid payments"}, (400, "invalid_scope")),
])
async def test_every_check_of_an_approval_has_its_error(world: World, change: dict[str, Any],
                                                        error: tuple[int, str]) -> None:
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    resp = await approve(world.proxy, wallet, key, ShopRequest(), **change)
    assert await error_of(resp) == error


async def test_the_wrong_action_and_a_stale_jwt_are_refused(world: World) -> None:
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    for device_jwt in (key.sign(await challenge(world.proxy), "setup"),
                       key.sign(await challenge(world.proxy), "approve", iat=1_000_000_000)):
        resp = await world.proxy.post("/token", approval_form(wallet["refresh_token"],
                                                              device_jwt, ShopRequest()))
        assert await error_of(resp) == (400, "invalid_grant")


async def test_a_rotated_out_or_revoked_refresh_token_cannot_approve(world: World) -> None:
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    rotated = await world.proxy.refresh(wallet["refresh_token"], client_id=WALLET)
    assert rotated.status == 200
    resp = await approve(world.proxy, wallet, key, ShopRequest())  # the old one
    assert await error_of(resp) == (400, "invalid_grant")
    current = await rotated.json()
    assert (await approve(world.proxy, current, key, ShopRequest())).status == 200
    await world.proxy.post("/revoke", {"token": current["refresh_token"], "client_id": WALLET})
    resp = await approve(world.proxy, current, key, ShopRequest())
    assert await error_of(resp) == (400, "invalid_grant")


async def test_an_approval_code_is_single_use_and_needs_the_shops_verifier(world: World
                                                                           ) -> None:  # fmt: skip
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    request = ShopRequest()
    answer = await (await approve(world.proxy, wallet, key, request)).json()
    wrong = await shop_redeems(world.proxy, answer["code"], ShopRequest())  # another verifier
    assert await error_of(wrong) == (400, "invalid_grant")
    request2 = ShopRequest()
    answer = await (await approve(world.proxy, wallet, key, request2)).json()
    assert (await shop_redeems(world.proxy, answer["code"], request2)).status == 200
    replay = await shop_redeems(world.proxy, answer["code"], request2)
    assert await error_of(replay) == (400, "invalid_grant")


async def test_a_login_of_another_sector_is_not_shared(world: World) -> None:
    """The config check keeps approve_for within a sector; a sector changed after the
    wallet's login is refused at the approval, not handed the old sector's sub."""
    own_apps(world)
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)
    config = world.proxy.config
    world.reload(dataclasses.replace(config, clients=tuple(
        dataclasses.replace(c, sector_identifier="shop.example") if c.client_id == SHOP else c
        for c in config.clients)))
    resp = await approve(world.proxy, wallet, key, ShopRequest())
    assert await error_of(resp) == (400, "invalid_grant")


async def test_only_an_approver_binds_a_device_key(world: World) -> None:
    own_apps(world)
    key = DeviceKey.generate()
    login = await world.proxy.login()  # PUBLIC, which approves nobody's logins
    resp = await world.proxy.exchange(login, x_app2app_device_key_jwt=key.sign(
        await challenge(world.proxy), "setup"))
    assert await error_of(resp) == (400, "invalid_request")


# --- Native SSO ---------------------------------------------------------------------------


async def test_native_sso_the_shop_joins_the_wallets_device_session(world: World) -> None:
    own_apps(world)
    wallet = await wallet_login(world.proxy, None)
    device_secret = wallet["device_secret"]
    wallet_id = claims_of(wallet["id_token"])
    assert wallet_id["sid"] and wallet_id["ds_hash"]
    resp = await world.proxy.post("/token", exchange_form(wallet["id_token"], device_secret))
    assert resp.status == 200, await resp.text()
    shop = await resp.json()
    assert shop["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert "device_secret" not in shop
    shop_id = claims_of(shop["id_token"])
    assert shop_id["aud"] == SHOP
    assert shop_id["sub"] == wallet_id["sub"]
    for claim in ("acr", "authentication_level", "auth_time", "sid", "ds_hash"):
        assert shop_id[claim] == wallet_id[claim]
    assert shop_id["amr"][-1] == "native_sso"
    # the shop's ID token joins a third time (chained), from another instance
    other = await world.another_proxy()
    again = await other.post("/token", exchange_form(shop["id_token"], device_secret))
    assert again.status == 200, await again.text()


async def test_native_sso_refusals(world: World) -> None:
    own_apps(world)
    wallet = await wallet_login(world.proxy, None)
    other = await wallet_login(world.proxy, None)  # a second device session
    secret, id_token = wallet["device_secret"], wallet["id_token"]
    cases: list[tuple[dict[str, str], tuple[int, str]]] = [
        (exchange_form(id_token, "a2a_ds_unknown"), (400, "invalid_grant")),
        (exchange_form(other["id_token"], secret), (400, "invalid_grant")),  # other session
        (exchange_form(id_token[:-4] + "AAAA", secret), (400, "invalid_grant")),  # signature
        (exchange_form(id_token, secret, subject_token_type="urn:x"), (400, "invalid_request")),
        (exchange_form(id_token, secret, actor_token_type=None), (400, "invalid_request")),
        (exchange_form(id_token, secret, actor_token=None), (400, "invalid_request")),
        (exchange_form(id_token, secret, audience="https://elsewhere.example"),
         (400, "invalid_target")),
        (exchange_form(id_token, secret, scope="openid payments"), (400, "invalid_scope")),
        (exchange_form(id_token, secret, client_id=PUBLIC), (400, "unauthorized_client")),
    ]
    for form, error in cases:
        assert await error_of(await world.proxy.post("/token", form)) == error, form
    assert (await world.proxy.post("/token", exchange_form(id_token, secret))).status == 200


async def test_native_sso_ends_with_the_wallets_login_and_with_revoke_sub(world: World
                                                                         ) -> None:  # fmt: skip
    own_apps(world)
    wallet = await wallet_login(world.proxy, None)
    form = exchange_form(wallet["id_token"], wallet["device_secret"])
    shop = await (await world.proxy.post("/token", form)).json()
    await world.proxy.post("/revoke", {"token": wallet["refresh_token"], "client_id": WALLET})
    assert await error_of(await world.proxy.post("/token", form)) == (400, "invalid_grant")
    assert (await world.proxy.introspect(shop["access_token"]))["active"] is True
    wallet = await wallet_login(world.proxy, None)
    form = exchange_form(wallet["id_token"], wallet["device_secret"])
    assert (await world.proxy.post("/token", form)).status == 200
    await revoke(world.store, "sub", claims_of(wallet["id_token"])["sub"])
    assert await error_of(await world.proxy.post("/token", form)) == (400, "invalid_grant")
    assert (await world.proxy.introspect(shop["access_token"]))["active"] is False


async def test_the_device_secret_is_stored_hashed(world: World) -> None:
    own_apps(world)
    wallet = await wallet_login(world.proxy, None)
    client = redis.from_url(world.store.url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{world.store.prefix}*")]
        values = [await client.get(k) for k in keys]
    finally:
        await client.aclose()
    dump = b" ".join(k + b" " + (v or b"") for k, v in zip(keys, values, strict=True))
    assert wallet["device_secret"].encode() not in dump
    assert any(k.startswith(f"{world.store.prefix}dsess:".encode()) for k in keys)


async def test_the_exchange_grant_types_are_unsupported_without_such_clients(world: World
                                                                            ) -> None:  # fmt: skip
    wallet = {"refresh_token": "a2a_rt_x"}
    form = approval_form(wallet["refresh_token"], "x", ShopRequest(), client_id=PUBLIC)
    assert await error_of(await world.proxy.post("/token", form)) == (
        400, "unsupported_grant_type")
    form = exchange_form("x", "y", client_id=PUBLIC)
    assert await error_of(await world.proxy.post("/token", form)) == (
        400, "unsupported_grant_type")


# --- a retry is not a replay ------------------------------------------------------------


async def test_an_interrupted_exchange_that_binds_and_opens_a_session_is_finished_by_its_retry(
    world_factory: WorldFactory, faulty_store: Callable[[], FaultyStore], clock: Clock,
) -> None:
    """The store fails while the wallet's code exchange writes its tokens (after it bound
    the key and opened the device session); the app's retry sends the same device-key JWT
    (its challenge already consumed by the first attempt) and gets the same device_secret,
    which works; the bound key approves."""
    world: World = await world_factory()
    own_apps(world)
    store = faulty_store()
    key = DeviceKey.generate()
    login = await world.proxy.login(client_id=WALLET, scope="openid profile offline_access "
                                    "device_sso")  # fmt: skip
    device_jwt = key.sign(await challenge(world.proxy), "setup")
    store.fail("add", "before")
    first = await world.proxy.exchange(login, client_id=WALLET,
                                       x_app2app_device_key_jwt=device_jwt)
    assert await error_of(first) == (503, "temporarily_unavailable")
    clock.advance(IN_FLIGHT + 1)
    retry = await world.proxy.exchange(login, client_id=WALLET,
                                       x_app2app_device_key_jwt=device_jwt)
    assert retry.status == 200, await retry.text()
    wallet = await retry.json()
    sso = await world.proxy.post("/token", exchange_form(wallet["id_token"],
                                                         wallet["device_secret"]))
    assert sso.status == 200, await sso.text()
    assert (await approve(world.proxy, wallet, key, ShopRequest())).status == 200
    # the challenge serves that one exchange's retry, not another login's
    other = await world.proxy.login(client_id=WALLET, scope="openid offline_access")
    reused = await world.proxy.exchange(other, client_id=WALLET,
                                        x_app2app_device_key_jwt=device_jwt)
    assert await error_of(reused) == (400, "invalid_grant")
