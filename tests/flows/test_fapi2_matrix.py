"""``profile: fapi2`` through every door: the browser and the browser-less endpoint, a
redirect bank and a decoupled one, named directly, chosen on the picker, or behind the
interstitial. Each way holds what the FAPI 2.0 Security Profile (Final) asks of the
authorization server:

- §5.3.2.2: "shall reject authorization requests sent without [RFC9126]" and "shall
  reject pushed authorization requests without client authentication"; "shall require
  PKCE [RFC7636] with S256"; "shall require the redirect_uri parameter in pushed
  authorization requests"; "shall require the value of response_type ... to be code";
  "shall return an iss parameter in the authorization response according to [RFC9207]";
  "shall not use the HTTP 307 status code".
- RFC 9126 §4 and RFC 9101 §6.3 it builds on: the server "MUST only use the parameters
  in the Request Object", so whatever else the front channel carries is ignored (for a
  fapi2 client its native_callback_uri too), and no token or ID token ever travels in
  the front channel (response_type code only, response_mode query).
- §5.3.2.1: "shall only issue sender-constrained access tokens" (DPoP here: a token
  request without a proof is refused, the token is DPoP-bound), "shall authenticate
  clients using ... private_key_jwt", the code is bound to the pushed DPoP key (RFC 9449
  §10.1).
"""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.flows.harness import (
    ACR_A,
    ACR_B,
    ACR_C,
    APP_REDIRECT,
    FAPI_CLIENT,
    FAPI_CLIENT_KEY,
    NATIVE_CALLBACK,
    PUBLIC,
    DPoPKey,
    Login,
    World,
    WorldFactory,
    new_request,
    query_of,
)
from tests.security.cases import ASSERTION_TYPE, assertion

OTHER_CALLBACK = "https://app.merchant.example/app2app-other"
ENTRIES = ("browser", "native")
BANKS = ("redirect", "decoupled")
ROUTES = ("direct", "picker", "interstitial")
BANK_OF = {"redirect": ("bank-a", ACR_A), "decoupled": ("bank-c", ACR_C)}
# what a front channel may add to a pushed request; all of it must be ignored
FRONT_CHANNEL_NOISE = {
    "response_type": "code token", "response_mode": "fragment", "scope": "openid payments",
    "redirect_uri": "https://evil.example/cb", "state": "forged", "nonce": "forged",
    "acr_values": ACR_B, "prompt": "none", "code_challenge_method": "plain",
}


def client_assertion(issuer: str) -> dict[str, str]:
    """private_key_jwt for the fapi2 client: ES256, ``aud`` its issuer as a string."""
    return {"client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(FAPI_CLIENT, issuer, FAPI_CLIENT_KEY)}


async def fapi2_world(world_factory: WorldFactory, route: str) -> World:
    """Banks A (redirect) and C (decoupled); the fapi2 client may use both and names
    neither by default (so a request without acr_values gets the picker)."""
    interstitial = {"interstitial": route == "interstitial"}
    world: World = await world_factory(ciba=True, bank_a_overrides=interstitial,
                                       bank_c_overrides=interstitial)
    world.ciba.ciba_interval = 1
    world.ciba.ciba_deep_link = route == "interstitial"  # the bank app's page to open
    if route != "interstitial":
        world.ciba.ciba_decision = "approve"
    config = world.proxy.config
    world.reload(dataclasses.replace(config, clients=tuple(
        dataclasses.replace(c, default_acr=None, acr_values=(ACR_A, ACR_C),
                            native_callback_uris=(NATIVE_CALLBACK, OTHER_CALLBACK))
        if c.client_id == FAPI_CLIENT else c for c in config.clients)))
    return world


async def nonce_for(world: World, key: DPoPKey) -> None:
    """A DPoP nonce the way a client gets one (RFC 9449 §8): a proof without one."""
    resp = await world.proxy.post(
        "/token", {"grant_type": "refresh_token", "refresh_token": "a2a_rt_none",
                   "client_id": PUBLIC},
        headers={"DPoP": key.proof("POST", f"{world.proxy.issuer}/token")})
    assert (await resp.json())["error"] == "use_dpop_nonce"
    key.remember(resp)


async def push(world: World, key: DPoPKey, **params: str | None) -> tuple[str, Login]:
    """The request, pushed with the client's assertion and a DPoP proof (which binds the
    code to the key, RFC 9449 §10.1)."""
    login, form = new_request(client_id=FAPI_CLIENT, scope="openid profile offline_access",
                              **params)
    proof = key.proof("POST", f"{world.proxy.issuer}/par")
    resp = await world.proxy.post("/par", {**form, **client_assertion(world.proxy.issuer)},
                                  headers={"DPoP": proof})
    body = await resp.json()
    assert resp.status == 201, body
    assert body["expires_in"] < 600  # §5.3.2.2: "less than 600 seconds"
    key.remember(resp)
    return body["request_uri"], login


class Page(HTMLParser):
    """The picker's links (one per bank) and the interstitial's one link."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a":
            self.links.append(a["href"])


async def json_action(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    return body


async def at_the_bank(world: World, entry: str, bank: str, route: str,
                      resp: aiohttp.ClientResponse) -> str:  # fmt: skip
    """From the proxy's first answer to the URL the bank sends the user back to (the
    proxy's callback or resume): choose on the picker, tap the interstitial, let the
    bank app decide."""
    http, issuer = world.proxy.http, world.proxy.issuer
    bank_id, _ = BANK_OF[bank]
    if route == "picker":
        if entry == "native":
            prompt = await json_action(resp)
            assert prompt["action"] == "prompt"
            assert set(prompt["userPrompt"]["options"]["bank"]["values"]) == {"bank-a", "bank-c"}
            resp = await world.proxy.post("/native/authorize/pick",
                                          {"id": prompt["id"], "bank": bank_id})
        else:
            assert resp.status == 200 and resp.content_type == "text/html"
            (link,) = [u for u in Page(await resp.text()).links
                       if u.endswith(f"/{bank_id}") and "/authorize/pick/" in u]
            resp = await http.get(link, allow_redirects=False)
            await resp.read()
    if entry == "native":
        step = await json_action(resp)
        if bank == "decoupled" and route != "interstitial":
            # no app to open: the app calls /resume itself
            assert step == {"action": "call", "url": step["url"]}
            return str(step["url"])
        assert step["action"] == "deep_link", step  # never the HTML interstitial
        url = str(step["url"])
    elif route == "interstitial":
        assert resp.status == 200 and resp.content_type == "text/html", await resp.text()
        (url,) = Page(await resp.text()).links  # the user taps the one link
    else:
        assert resp.status in (302, 303), await resp.text()
        url = resp.headers["Location"]
        if bank == "decoupled":
            return url
    if bank == "decoupled":
        assert url.startswith(world.ciba.issuer + "/app2app/")
        decided = await http.post(url + "/decide", data={"decision": "approve"},
                                  allow_redirects=False)
        return decided.headers["Location"]
    assert url.startswith(world.bank_a.issuer + "/authorize?")
    answered = await http.get(url, allow_redirects=False)
    location = answered.headers["Location"]
    assert location.startswith(f"{issuer}/callback/bank-a?")
    return location


async def authorization_response(world: World, entry: str, url: str) -> str:
    """The proxy's answer at its callback or resume: the merchant redirect."""
    if entry == "native":
        step = await json_action(await world.proxy.call(url))
        assert step["action"] == "call"
        return str(step["url"])
    resp = await world.proxy.http.get(url, allow_redirects=False)
    # §5.3.2.2: "shall not use the HTTP 307 status code"
    assert resp.status in (302, 303), await resp.text()
    return resp.headers["Location"]


async def token_request(world: World, form: dict[str, str], key: DPoPKey | None
                        ) -> aiohttp.ClientResponse:  # fmt: skip
    headers = {"DPoP": key.proof("POST", f"{world.proxy.issuer}/token")} if key else {}
    resp = await world.proxy.post("/token", {**form, **client_assertion(world.proxy.issuer)},
                                  headers=headers)
    if key is not None:
        key.remember(resp)
    return resp


async def start(world: World, entry: str, request_uri: str, **front: str) -> aiohttp.ClientResponse:
    path = "/native/authorize" if entry == "native" else "/authorize"
    query = {"client_id": FAPI_CLIENT, "request_uri": request_uri, **front}
    if entry == "native":
        return await world.proxy.post(path, query)
    resp = await world.proxy.http.get(f"{world.proxy.issuer}{path}", params=query,
                                      allow_redirects=False)
    await resp.read()
    return resp


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("bank", BANKS)
@pytest.mark.parametrize("entry", ENTRIES)
async def test_fapi2_login(world_factory: WorldFactory, entry: str, bank: str, route: str
                           ) -> None:  # fmt: skip
    world = await fapi2_world(world_factory, route)
    issuer = world.proxy.issuer
    bank_id, acr = BANK_OF[bank]

    # the whole request in the front channel: refused, told to the app with state and iss
    _, bare = new_request(client_id=FAPI_CLIENT, scope="openid profile", acr_values=acr,
                          login_hint="alice", native_callback_uri=NATIVE_CALLBACK)
    refused = await start(world, entry, "", **bare)
    location = (str((await json_action(refused))["url"]) if entry == "native"
                else refused.headers["Location"])  # fmt: skip
    params = query_of(location)
    assert location.startswith(APP_REDIRECT + "?")
    assert (params["error"], params["state"], params["iss"]) == (
        "invalid_request", bare["state"], issuer)

    key = DPoPKey.generate()
    await nonce_for(world, key)
    pushed: dict[str, str | None] = {"login_hint": "alice"}
    if route != "picker":
        pushed["acr_values"] = acr
    if entry == "native":
        pushed["native_callback_uri"] = NATIVE_CALLBACK
    request_uri, login = await push(world, key, **pushed)
    front = dict(FRONT_CHANNEL_NOISE)
    if entry == "native":
        front["native_callback_uri"] = OTHER_CALLBACK  # registered, but not the pushed one
    resp = await start(world, entry, request_uri, **front)
    back = await at_the_bank(world, entry, bank, route, resp)
    location = await authorization_response(world, entry, back)

    # RFC 9207 §2 iss, the pushed state, a code: nothing else in the front channel
    assert location.startswith(APP_REDIRECT + "?") and not urlsplit(location).fragment
    login.params = query_of(location)
    assert set(login.params) == {"code", "state", "iss"}, login.params
    assert (login.params["state"], login.params["iss"]) == (login.state, issuer)

    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "code_verifier": login.verifier}
    # sender-constrained only: no proof, no token; another key than the pushed one, no token
    bare_token = await token_request(world, form, None)
    assert (bare_token.status, (await bare_token.json())["error"]) == (400, "invalid_dpop_proof")
    thief = DPoPKey.generate()
    thief.nonce = key.nonce
    stolen = await token_request(world, form, thief)
    assert (stolen.status, (await stolen.json())["error"]) == (400, "invalid_grant")
    # (the code was used up by that attempt: RFC 6749 §4.1.2 single use; log in again)
    request_uri, login = await push(world, key, **pushed)
    resp = await start(world, entry, request_uri)
    location = await authorization_response(
        world, entry, await at_the_bank(world, entry, bank, route, resp))
    login.params = query_of(location)
    form.update(code=login.code, code_verifier=login.verifier)
    exchanged = await token_request(world, form, key)
    tokens = await exchanged.json()
    assert exchanged.status == 200, tokens
    assert tokens["token_type"] == "DPoP"
    info = await world.proxy.introspect(tokens["access_token"])
    assert (info["active"], info["cnf"], info["bank_id"], info["token_type"]) == (
        True, {"jkt": key.jkt}, bank_id, "DPoP")
    # and the refresh is sender-constrained too
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    unbound = await token_request(world, refresh, None)
    assert (await unbound.json())["error"] == "invalid_dpop_proof"
    refreshed = await token_request(world, refresh, key)
    assert refreshed.status == 200, await refreshed.text()
    assert (await refreshed.json())["token_type"] == "DPoP"


async def test_fapi2_pushed_requests_are_held_to_the_profile(world_factory: WorldFactory
                                                             ) -> None:  # fmt: skip
    world = await fapi2_world(world_factory, "direct")
    issuer = world.proxy.issuer

    async def push_error(auth: dict[str, str], **params: str | None) -> tuple[int, str]:
        _, form = new_request(client_id=FAPI_CLIENT, scope="openid profile",
                              acr_values=ACR_A, **params)
        resp = await world.proxy.post("/par", {**form, **auth})
        return resp.status, (await resp.json())["error"]

    authenticated = client_assertion
    # "shall reject pushed authorization requests without client authentication"
    assert await push_error({}) == (401, "invalid_client")
    for params, expected in [
        ({"code_challenge_method": "plain"}, (400, "invalid_request")),  # PKCE S256
        ({"code_challenge_method": None}, (400, "invalid_request")),
        ({"code_challenge": None}, (400, "invalid_request")),
        ({"redirect_uri": None}, (400, "invalid_request")),  # redirect_uri required
        ({"response_type": "code id_token"}, (400, "unsupported_response_type")),
        ({"response_type": "token"}, (400, "unsupported_response_type")),
        ({"response_mode": "fragment"}, (400, "invalid_request")),
    ]:
        assert await push_error(authenticated(issuer), **params) == expected, params
    # §5.3.2.1: the implicit grant, the hybrid flow and the password grant are refused
    password = await token_request(world, {"grant_type": "password", "username": "a",
                                           "password": "b"}, None)
    assert (password.status, (await password.json())["error"]) == (
        400, "unsupported_grant_type")


async def test_fapi2_native_callback_uri_is_the_pushed_one(world_factory: WorldFactory
                                                           ) -> None:  # fmt: skip
    """A fapi2 app sends only client_id and request_uri to the browser-less endpoint too:
    the native_callback_uri the bank's app will invoke is the one it pushed, never one
    added in the front channel (which a default client may add)."""
    world = await fapi2_world(world_factory, "direct")
    world.bank_a.native_endpoint = True
    key = DPoPKey.generate()
    await nonce_for(world, key)
    request_uri, _ = await push(world, key, acr_values=ACR_A,
                                native_callback_uri=NATIVE_CALLBACK)
    resp = await start(world, "native", request_uri, native_callback_uri=OTHER_CALLBACK)
    bank_native = str((await json_action(resp))["url"])
    assert bank_native.startswith(world.bank_a.issuer + "/native/authorize?")
    assert query_of(bank_native)["native_callback_uri"] == NATIVE_CALLBACK

    # one that was not pushed is missing, whatever the front channel says
    request_uri, _ = await push(world, key, acr_values=ACR_A)
    missing = await start(world, "native", request_uri, native_callback_uri=NATIVE_CALLBACK)
    assert missing.status == 400
    body = await missing.json()
    assert (body["error"], body["error_description"]) == (
        "invalid_request", "native_callback_uri is missing")
