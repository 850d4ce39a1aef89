"""Nothing kept is served once what it was kept for is gone.

Every record the proxy keeps to answer again later (the pair a rotated refresh token
became, a pushed request, the picker's pending choice, a decoupled bank's answer, a
redirect bank's transaction, the banks' metadata and key sets) is checked again at use
time against the grant and the client as they are then: a grant revoked by /revoke, by a
code replay or by ``app2app-proxy revoke``, a client removed from the config by a reload,
or a redirect_uri removed from it, ends what was kept for them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import pytest

from proxy.config.settings import ClientSettings, Config
from proxy.ops.revoke import revoke
from tests.flows.harness import (
    ACR_A,
    ACR_C,
    APP,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    PUBLIC,
    RS_BANK,
    SERVER,
    World,
    WorldFactory,
    app_redirect_params,
    new_request,
)

OTHER_REDIRECT = "https://app.merchant.example/auth/other"
INTROSPECTION_JWT = "application/token-introspection+jwt"


def without_client(config: Config, client_id: str) -> Config:
    return dataclasses.replace(
        config, clients=tuple(c for c in config.clients if c.client_id != client_id))


def with_other_redirect_uri(config: Config, client_id: str) -> Config:
    """``client_id`` keeps logging in, at another redirect_uri than the one it used."""
    def moved(client: ClientSettings) -> ClientSettings:
        if client.client_id != client_id:
            return client
        return dataclasses.replace(client, redirect_uris=(OTHER_REDIRECT,))
    return dataclasses.replace(config, clients=tuple(moved(c) for c in config.clients))


# a reload that takes the client away, or only the redirect_uri it used
CHANGES: dict[str, Callable[[Config, str], Config]] = {
    "client_removed": without_client,
    "redirect_uri_removed": with_other_redirect_uri,
}
ERROR_OF_CHANGE = {"client_removed": "invalid_client", "redirect_uri_removed": "invalid_request"}


async def assert_error_page(resp: aiohttp.ClientResponse, error: str) -> None:
    """An HTML error page: the client or its redirect_uri is no longer verified, so no
    redirect (RFC 6749 §4.1.2.1: "MUST NOT automatically redirect the user-agent to the
    invalid redirection URI") and no code."""
    assert "Location" not in resp.headers, resp.headers["Location"]
    assert resp.status == 400, await resp.text()
    assert resp.content_type == "text/html"
    assert f"<code>{error}</code>" in await resp.text()


async def assert_json_error(resp: aiohttp.ClientResponse, error: str) -> None:
    assert "Location" not in resp.headers
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error"] == error, body
    assert "url" not in body  # no action that would take the app anywhere


# --- the refresh grace answer --------------------------------------------------------


async def _revoke_by_new_refresh_token(world: World, tokens: dict[str, Any],
                                       pair: dict[str, Any]) -> None:  # fmt: skip
    resp = await world.proxy.post("/revoke", {"token": pair["refresh_token"],
                                              "client_id": PUBLIC})
    assert resp.status == 200


async def _revoke_by_rotated_refresh_token(world: World, tokens: dict[str, Any],
                                           pair: dict[str, Any]) -> None:  # fmt: skip
    """The client revokes the refresh token it holds: the one it sent to the refresh
    whose answer it lost. Inside refresh_grace that token still fetches the new pair,
    so revoking it revokes the grant (RFC 7009 §2.1: revoking a refresh token "SHOULD"
    also invalidate the access tokens of the same authorization grant)."""
    resp = await world.proxy.post("/revoke", {"token": tokens["refresh_token"],
                                              "client_id": PUBLIC})
    assert resp.status == 200


async def _replay_code(world: World, tokens: dict[str, Any], pair: dict[str, Any]) -> None:
    replay = await world.proxy.exchange(world.extra["login"])
    assert (replay.status, (await replay.json())["error"]) == (400, "invalid_grant")


async def _operator_revoke(world: World, tokens: dict[str, Any], pair: dict[str, Any]) -> None:
    sub = (await world.proxy.introspect(pair["access_token"]))["sub"]
    assert (await revoke(world.store, "sub", sub)).grants == 1


REVOCATIONS: dict[str, Callable[[World, dict[str, Any], dict[str, Any]], Awaitable[None]]] = {
    "revoke_new_refresh_token": _revoke_by_new_refresh_token,
    "revoke_rotated_refresh_token": _revoke_by_rotated_refresh_token,
    "code_replay": _replay_code,
    "operator_revoke": _operator_revoke,
}


@pytest.mark.parametrize("how", list(REVOCATIONS))
async def test_refresh_grace_answer_is_not_served_once_the_grant_is_revoked(
    world: World, how: str
) -> None:
    login = await world.proxy.login()
    world.extra["login"] = login
    tokens = await (await world.proxy.exchange(login)).json()
    first = await world.proxy.refresh(tokens["refresh_token"])
    assert first.status == 200, await first.text()
    pair = await first.json()
    # inside refresh_grace (10 s) a retry gets the same pair, as long as the grant lives
    retry = await world.proxy.refresh(tokens["refresh_token"])
    assert (await retry.json())["refresh_token"] == pair["refresh_token"]

    await REVOCATIONS[how](world, tokens, pair)

    again = await world.proxy.refresh(tokens["refresh_token"])
    body = await again.json()
    # no new pair, and above all no ID token: a signed ID token cannot be called back
    assert (again.status, body["error"]) == (400, "invalid_grant"), body
    assert not {"access_token", "refresh_token", "id_token"} & set(body)
    assert await world.proxy.introspect(pair["access_token"]) == {"active": False}
    later = await world.proxy.refresh(pair["refresh_token"])
    assert (await later.json())["error"] == "invalid_grant"


# --- pushed requests and the picker's pending choices after a reload ------------------


@pytest.mark.parametrize("change", list(CHANGES))
async def test_request_uri_of_a_client_the_reload_changed(world: World, change: str) -> None:
    _, form = new_request(client_id=CONFIDENTIAL)
    pushed = await world.proxy.post("/par", form, auth=(CONFIDENTIAL, CONFIDENTIAL_SECRET))
    assert pushed.status == 201, await pushed.text()
    request_uri = (await pushed.json())["request_uri"]

    world.reload(CHANGES[change](world.proxy.config, CONFIDENTIAL))

    resp = await world.proxy.http.get(
        f"{world.proxy.issuer}/authorize",
        params={"client_id": CONFIDENTIAL, "request_uri": request_uri}, allow_redirects=False)
    await assert_error_page(resp, ERROR_OF_CHANGE[change])
    assert not world.bank_a.requests or world.bank_a.requests[-1].path != "/authorize"


@pytest.mark.parametrize("change", list(CHANGES))
async def test_picker_choice_of_a_client_the_reload_changed(world: World, change: str) -> None:
    resp, _ = await world.proxy.authorize(client_id=APP)
    assert resp.status == 200  # the picker: APP names no bank
    link = _bank_link(await resp.text(), "bank-a")

    world.reload(CHANGES[change](world.proxy.config, APP))

    picked = await world.proxy.http.get(link, allow_redirects=False)
    await assert_error_page(picked, ERROR_OF_CHANGE[change])


@pytest.mark.parametrize("change", list(CHANGES))
async def test_native_prompt_answer_of_a_client_the_reload_changed(
    world: World, change: str
) -> None:
    resp, _ = await world.proxy.native()
    prompt = await resp.json()
    assert prompt["action"] == "prompt", prompt

    world.reload(CHANGES[change](world.proxy.config, APP))

    picked = await world.proxy.post("/native/authorize/pick",
                                    {"id": prompt["id"], "bank": "bank-a"})
    await assert_json_error(picked, ERROR_OF_CHANGE[change])


def _bank_link(html: str, bank_id: str) -> str:
    """The picker's link for one bank (GET /authorize/pick/{pick_id}/{bank_id})."""
    found = re.search(r'href="([^"]+/authorize/pick/[^"/]+/' + re.escape(bank_id) + ')"', html)
    assert found is not None, html
    return found.group(1)


# --- a login under way at the bank when the reload changes its client -----------------


@pytest.mark.parametrize("change", list(CHANGES))
async def test_redirect_bank_answer_for_a_client_the_reload_changed(
    world: World, change: str
) -> None:
    resp, _ = await world.proxy.authorize(acr_values=ACR_A)
    at_bank = await world.proxy.http.get(resp.headers["Location"], allow_redirects=False)
    callback = at_bank.headers["Location"]
    assert callback.startswith(f"{world.proxy.issuer}/callback/bank-a?")

    world.reload(CHANGES[change](world.proxy.config, PUBLIC))

    answered = await world.proxy.http.get(callback, allow_redirects=False)
    await assert_error_page(answered, ERROR_OF_CHANGE[change])
    # the bank's code was not redeemed for a client that is gone
    assert world.bank_a.requests[-1].path != "/token"


async def test_native_redirect_bank_answer_for_a_client_the_reload_removed(
    world: World,
) -> None:
    resp, _ = await world.proxy.native(acr_values=ACR_A)
    deep_link = (await resp.json())["url"]
    callback = (await world.proxy.http.get(deep_link, allow_redirects=False)).headers["Location"]

    world.reload(without_client(world.proxy.config, APP))

    await assert_json_error(await world.proxy.call(callback), "invalid_client")


@pytest.mark.parametrize("change", list(CHANGES))
async def test_decoupled_bank_answer_kept_for_a_client_the_reload_changed(
    world_factory: WorldFactory, change: str
) -> None:
    world: World = await world_factory(ciba=True)
    world.ciba.ciba_interval = 1
    world.ciba.ciba_decision = "approve"
    resp, _ = await world.proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    resume = resp.headers["Location"]
    handle = resume.rsplit("/", 1)[1]
    status_url = f"{world.proxy.issuer}/authorize/status/{handle}"
    # the bank approved: its answer is kept, encrypted, until the user comes back
    assert (await (await world.proxy.http.get(status_url)).json())["status"] == "complete"

    world.reload(CHANGES[change](world.proxy.config, SERVER))

    await assert_error_page(await world.proxy.http.get(resume, allow_redirects=False),
                            ERROR_OF_CHANGE[change])
    await assert_json_error(await world.proxy.http.get(status_url), ERROR_OF_CHANGE[change])


async def test_pending_decoupled_login_of_a_removed_client_no_longer_polls_the_bank(
    world_factory: WorldFactory,
) -> None:
    world: World = await world_factory(ciba=True)
    world.ciba.ciba_interval = 1
    resp, _ = await world.proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    handle = resp.headers["Location"].rsplit("/", 1)[1]
    status_url = f"{world.proxy.issuer}/authorize/status/{handle}"
    assert (await (await world.proxy.http.get(status_url)).json())["status"] == "pending"
    polled = len(world.ciba.requests)

    world.reload(without_client(world.proxy.config, SERVER))
    await asyncio.sleep(1.1)  # the next poll is due

    await assert_json_error(await world.proxy.http.get(status_url), "invalid_client")
    assert len(world.ciba.requests) == polled


# --- introspection, its JWT form and userinfo: nothing cached ------------------------


async def test_introspection_and_userinfo_answer_from_the_grant_as_it_is_now(
    world: World,
) -> None:
    tokens = await world.proxy.tokens()
    token = tokens["access_token"]

    async def introspect(accept: str | None) -> aiohttp.ClientResponse:
        headers = {"Authorization": aiohttp.encode_basic_auth(*RS_BANK)}
        if accept is not None:
            headers["Accept"] = accept
        resp = await world.proxy.http.post(f"{world.proxy.issuer}/introspect",
                                           data={"token": token}, headers=headers)
        await resp.read()
        # RFC 7662 and RFC 9701 answers are per request and must not be kept by anyone
        # on the way (RFC 6749 §5.1's rule for responses with tokens)
        assert resp.headers["Cache-Control"] == "no-store"
        return resp

    async def active() -> tuple[bool, bool, int]:
        plain = await (await introspect(None)).json()
        signed = jwt.decode(await (await introspect(INTROSPECTION_JWT)).text(),
                            options={"verify_signature": False})
        info = await world.proxy.http.get(f"{world.proxy.issuer}/userinfo",
                                          headers={"Authorization": f"Bearer {token}"})
        assert info.headers["Cache-Control"] == "no-store"
        return plain["active"], signed["token_introspection"]["active"], info.status

    assert await active() == (True, True, 200)
    revoked = await world.proxy.post("/revoke", {"token": tokens["refresh_token"],
                                                 "client_id": PUBLIC})
    assert revoked.status == 200
    assert await active() == (False, False, 401)


# --- the banks' metadata and key sets --------------------------------------------------


async def test_a_reload_drops_the_banks_cached_key_sets(world: World) -> None:
    """A bank that withdraws a signing key (compromised) is believed at the next reload:
    a reload builds every bank anew, without the metadata and keys cached before it
    (otherwise a known kid is trusted until the cached set is an hour old)."""
    bank = world.bank_a
    assert (await world.proxy.tokens(acr_values=ACR_A))["access_token"]  # K1 cached
    withdrawn = bank.key
    bank.rotate_keys()
    published = bank.jwks()
    # an attacker holding the withdrawn key signs the bank's ID tokens with it
    bank.key = withdrawn
    bank.jwks = lambda: published  # type: ignore[method-assign]

    world.reload(dataclasses.replace(world.proxy.config))

    resp, login = await world.proxy.authorize(acr_values=ACR_A)
    final = await world.proxy.follow(resp)
    params = app_redirect_params(final)
    assert (params["error"], params["state"]) == ("server_error", login.state), params
    assert "code" not in params


async def test_a_bank_the_reload_removed_is_asked_nothing_more(world: World) -> None:
    resp, _ = await world.proxy.authorize(acr_values=ACR_A)
    callback = (await world.proxy.http.get(resp.headers["Location"], allow_redirects=False)
                ).headers["Location"]  # fmt: skip
    config = world.proxy.config
    world.reload(dataclasses.replace(
        config, banks=tuple(b for b in config.banks if b.id != "bank-a"),
        clients=tuple(dataclasses.replace(c, default_acr=None) for c in config.clients)))
    asked = len(world.bank_a.requests)

    answered = await world.proxy.http.get(callback, allow_redirects=False)
    assert answered.status == 404 and "Location" not in answered.headers
    ready = await (await world.proxy.http.get(f"{world.proxy.issuer}/readyz")).json()
    assert set(ready["banks"]) == {"bank-b"}
    assert len(world.bank_a.requests) == asked
