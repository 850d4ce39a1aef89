"""Codes, refresh rotation, revocation, introspection of the bank token."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from proxy.config.settings import ClientSettings, Config, Lifetimes, StoreSettings
from proxy.model.tokens import REFRESH_TOKEN, new_value
from proxy.store import open_store
from tests.flows.faults import Clock, FaultyStore, clock, faulty_store
from tests.flows.harness import (
    ACR_A,
    APP,
    APP_REDIRECT,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    PUBLIC,
    RS_BANK,
    RS_PLAIN,
    Proxy,
    World,
    WorldFactory,
    query_of,
)
from tests.security.cases import proxy_with

__all__ = ["clock", "faulty_store"]  # the fixtures


async def test_code_replay_is_refused_and_revokes_the_first_tokens(world: World) -> None:
    login = await world.proxy.login()
    first = await world.proxy.exchange(login)
    tokens = await first.json()
    replay = await world.proxy.exchange(login)
    assert replay.status == 400
    assert (await replay.json())["error"] == "invalid_grant"
    assert await world.proxy.introspect(tokens["access_token"]) == {"active": False}
    refreshed = await world.proxy.refresh(tokens["refresh_token"])
    assert (await refreshed.json())["error"] == "invalid_grant"


async def test_unknown_code_and_wrong_verifier(world: World) -> None:
    login = await world.proxy.login()
    wrong = await world.proxy.exchange(login, code_verifier="x" * 43)
    assert (wrong.status, (await wrong.json())["error"]) == (400, "invalid_grant")
    login.params["code"] = "a2a_ac_unknown"
    unknown = await world.proxy.exchange(login)
    assert (await unknown.json())["error"] == "invalid_grant"


async def test_confidential_client_authentication(world: World) -> None:
    login = await world.proxy.login(client_id=CONFIDENTIAL)
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "code_verifier": login.verifier}
    bad = await world.proxy.post("/token", form, auth=(CONFIDENTIAL, "wrong"))
    assert bad.status == 401
    assert bad.headers["WWW-Authenticate"].startswith("Basic")
    assert (await bad.json())["error"] == "invalid_client"
    login2 = await world.proxy.login(client_id=CONFIDENTIAL)
    form["code"] = login2.code
    form["code_verifier"] = login2.verifier
    ok = await world.proxy.post("/token", form, auth=(CONFIDENTIAL, CONFIDENTIAL_SECRET))
    assert ok.status == 200, await ok.text()
    login3 = await world.proxy.login(client_id=CONFIDENTIAL)
    post = await world.proxy.post("/token", {**form, "code": login3.code,
                                             "code_verifier": login3.verifier,
                                             "client_id": CONFIDENTIAL,
                                             "client_secret": CONFIDENTIAL_SECRET})
    assert post.status == 200, await post.text()


async def test_refresh_rotation_grace_and_reuse(world_factory: WorldFactory, clock: Clock
                                                ) -> None:  # fmt: skip
    world: World = await world_factory(lifetimes=Lifetimes(refresh_grace=1))
    tokens = await world.proxy.tokens()
    first = await world.proxy.refresh(tokens["refresh_token"])
    assert first.status == 200
    pair = await first.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    assert pair["access_token"] != tokens["access_token"]
    assert "nonce" not in pair
    # a retry inside the grace window gets the same new pair
    retry = await world.proxy.refresh(tokens["refresh_token"])
    assert retry.status == 200
    again = await retry.json()
    assert (again["access_token"], again["refresh_token"]) == (
        pair["access_token"], pair["refresh_token"])
    assert (await world.proxy.introspect(pair["access_token"]))["active"] is True
    # reuse after the window revokes the whole grant
    clock.advance(1.1)
    reuse = await world.proxy.refresh(tokens["refresh_token"])
    assert (reuse.status, (await reuse.json())["error"]) == (400, "invalid_grant")
    assert await world.proxy.introspect(pair["access_token"]) == {"active": False}
    after = await world.proxy.refresh(pair["refresh_token"])
    assert (await after.json())["error"] == "invalid_grant"


async def test_refresh_by_another_client_is_refused(world: World) -> None:
    tokens = await world.proxy.tokens()
    resp = await world.proxy.post("/token", {"grant_type": "refresh_token",
                                             "refresh_token": tokens["refresh_token"]},
                                  auth=(CONFIDENTIAL, CONFIDENTIAL_SECRET))
    assert (await resp.json())["error"] == "invalid_grant"
    ok = await world.proxy.refresh(tokens["refresh_token"])
    assert ok.status == 200


async def test_bank_tokens_refreshed_when_they_expire_first(world: World) -> None:
    world.bank_a.access_token_lifetime = 60  # shorter than the merchant's 300 s
    tokens = await world.proxy.tokens()
    before = (await world.proxy.introspect(tokens["access_token"], rs=RS_BANK))
    resp = await world.proxy.refresh(tokens["refresh_token"])
    assert resp.status == 200, await resp.text()
    pair = await resp.json()
    after = await world.proxy.introspect(pair["access_token"], rs=RS_BANK)
    assert after["bank_access_token"] != before["bank_access_token"]
    assert world.bank_a.last("/token").form["grant_type"] == "refresh_token"


async def test_bank_refusing_refresh_gives_invalid_grant(world: World) -> None:
    world.bank_a.access_token_lifetime = 60
    tokens = await world.proxy.tokens()
    world.bank_a.refuse_refresh = True
    resp = await world.proxy.refresh(tokens["refresh_token"])
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_grant")
    assert await world.proxy.introspect(tokens["access_token"]) == {"active": False}


async def test_revocation(world: World) -> None:
    tokens = await world.proxy.tokens()
    # RFC 7009 §2.2: an unknown token answers 200
    unknown = await world.proxy.post("/revoke", {"token": "nope", "client_id": PUBLIC})
    assert unknown.status == 200
    other = await world.proxy.post("/revoke", {"token": tokens["refresh_token"]},
                                   auth=(CONFIDENTIAL, CONFIDENTIAL_SECRET))
    assert (other.status, (await other.json())["error"]) == (400, "invalid_grant")
    bad_auth = await world.proxy.post("/revoke", {"token": tokens["refresh_token"]},
                                      auth=(CONFIDENTIAL, "wrong"))
    assert (bad_auth.status, (await bad_auth.json())["error"]) == (401, "invalid_client")
    at = await world.proxy.post("/revoke", {"token": tokens["access_token"],
                                            "token_type_hint": "access_token",
                                            "client_id": PUBLIC})
    assert at.status == 200
    assert await world.proxy.introspect(tokens["access_token"]) == {"active": False}
    refreshed = await world.proxy.refresh(tokens["refresh_token"])
    assert refreshed.status == 200  # revoking an access token leaves the grant
    pair = await refreshed.json()
    rt = await world.proxy.post("/revoke", {"token": pair["refresh_token"], "client_id": PUBLIC})
    assert rt.status == 200
    assert await world.proxy.introspect(pair["access_token"]) == {"active": False}
    assert (await (await world.proxy.refresh(pair["refresh_token"])).json())["error"] == (
        "invalid_grant")


async def test_introspection_visibility_of_the_bank_token(world: World) -> None:
    tokens = await world.proxy.tokens()
    plain = await world.proxy.introspect(tokens["access_token"], rs=RS_PLAIN)
    assert plain["active"] is True and "bank_access_token" not in plain
    allowed = await world.proxy.introspect(tokens["access_token"], rs=RS_BANK)
    bank_token = allowed["bank_access_token"]
    # the bank token is the one the bank issued: its userinfo accepts it
    resp = await world.proxy.http.get(f"{world.bank_a.issuer}/userinfo",
                                      headers={"Authorization": f"Bearer {bank_token}"})
    assert resp.status == 200
    # refresh tokens and unknown tokens are not active access tokens
    assert await world.proxy.introspect(tokens["refresh_token"], rs=RS_BANK) == {"active": False}
    assert await world.proxy.introspect("a2a_at_unknown", rs=RS_BANK) == {"active": False}
    unauthenticated = await world.proxy.post("/introspect", {"token": tokens["access_token"]})
    assert unauthenticated.status == 401
    assert (await unauthenticated.json())["error"] == "invalid_client"
    wrong = await world.proxy.post("/introspect", {"token": tokens["access_token"]},
                                   auth=(RS_PLAIN[0], "wrong"))
    assert wrong.status == 401


async def test_an_access_token_names_its_grant_and_is_active_only_with_it(world: World
                                                                         ) -> None:  # fmt: skip
    """``a2a_at_{grant}.{secret}``: introspection reads the token's record and the grant
    it names together, so the grant part must be the token's own and alive."""
    first, second = await world.proxy.tokens(), await world.proxy.tokens()
    grant_part, dot, secret = first["access_token"].removeprefix("a2a_at_").partition(".")
    assert dot and (len(grant_part), len(secret)) == (22, 43)
    other_grant = second["access_token"].removeprefix("a2a_at_").partition(".")[0]
    assert other_grant != grant_part
    for forged in (f"a2a_at_{other_grant}.{secret}",  # another live grant
                   f"a2a_at_{grant_part}{secret}", f"a2a_at_.{secret}",
                   f"a2a_at_{grant_part}.", f"a2a_rt_{grant_part}.{secret}"):
        assert await world.proxy.introspect(forged) == {"active": False}, forged
    assert (await world.proxy.introspect(first["access_token"]))["active"] is True
    # revoking the grant (through its refresh token) ends the access token at once
    revoked = await world.proxy.post("/revoke", {"token": first["refresh_token"],
                                                 "client_id": PUBLIC})
    assert revoked.status == 200
    assert await world.proxy.introspect(first["access_token"]) == {"active": False}
    assert (await world.proxy.introspect(second["access_token"]))["active"] is True


async def test_a_code_names_its_grant_and_another_grant_part_names_no_code(world: World
                                                                          ) -> None:  # fmt: skip
    """``a2a_ac_{grant}.{secret}``: the exchange consumes the code and reads the grant it
    names together. A code whose grant part is changed is unknown (and does not use up
    the real one); a code whose grant was revoked before the exchange gives nothing."""
    login, other = await world.proxy.login(), await world.proxy.login()
    grant_part, dot, secret = login.code.removeprefix("a2a_ac_").partition(".")
    assert dot and (len(grant_part), len(secret)) == (22, 43)
    other_grant = other.code.removeprefix("a2a_ac_").partition(".")[0]
    real = login.params["code"]
    for forged in (f"a2a_ac_{other_grant}.{secret}", f"a2a_ac_{grant_part}{secret}",
                   f"a2a_ac_.{secret}", f"a2a_at_{grant_part}.{secret}"):
        login.params["code"] = forged
        resp = await world.proxy.exchange(login)
        assert (resp.status, (await resp.json())["error"]) == (400, "invalid_grant"), forged
    login.params["code"] = real
    tokens = await (await world.proxy.exchange(login)).json()
    assert tokens["access_token"].startswith(f"a2a_at_{grant_part}.")
    # the other login's grant is revoked before its code is exchanged (an operator's
    # revoke --grant): the code gives nothing
    store = open_store(world.store)
    try:
        await store.revoke_grant(f"a2a_gr_{other_grant}")
    finally:
        await store.close()
    refused = await world.proxy.exchange(other)
    assert (refused.status, (await refused.json())["error"]) == (400, "invalid_grant")
    assert "revoked" in (await refused.json())["error_description"]


async def test_concurrent_refreshes_refresh_the_bank_once(world: World) -> None:
    world.bank_a.access_token_lifetime = 60
    tokens = await world.proxy.tokens()
    world.bank_a.token_delay = 0.3  # both requests are in flight while the bank answers
    first, second = await asyncio.gather(world.proxy.refresh(tokens["refresh_token"]),
                                         world.proxy.refresh(tokens["refresh_token"]))
    assert (first.status, second.status) == (200, 200)
    a, b = await first.json(), await second.json()
    assert (a["access_token"], a["refresh_token"]) == (b["access_token"], b["refresh_token"])
    bank_refreshes = [r for r in world.bank_a.requests
                      if r.path == "/token" and r.form.get("grant_type") == "refresh_token"]
    assert len(bank_refreshes) == 1


async def test_bank_unreachable_during_refresh_loses_nothing(world_factory: WorldFactory) -> None:
    world: World = await world_factory(bank_a_overrides={"timeout": 0.3})
    world.bank_a.access_token_lifetime = 60
    tokens = await world.proxy.tokens()
    world.bank_a.token_delay = 1
    resp = await world.proxy.refresh(tokens["refresh_token"])
    assert (resp.status, (await resp.json())["error"]) == (503, "temporarily_unavailable")
    world.bank_a.token_delay = 0
    again = await world.proxy.refresh(tokens["refresh_token"])
    assert again.status == 200, await again.text()


KYC = "merchant-kyc"
# merchant claim: bank claim. date_of_birth is a custom merchant claim (not OIDC Core
# §5.4's): its scope is the one of the same name
KYC_CLAIMS = {"name": "name", "given_name": "given_name", "family_name": "family_name",
              "birthdate": "birthdate", "email": "email", "date_of_birth": "birthdate"}
PROFILE = {"name", "given_name", "family_name", "birthdate"}
ALWAYS = {"iss", "sub", "aud", "iat", "exp", "auth_time", "acr", "amr", "at_hash",
          "authentication_level", "nonce"}


async def kyc_proxy(world_factory: WorldFactory) -> Proxy:
    """A proxy whose bank maps standard and custom claims, with a client registered for
    openid, profile, email and date_of_birth (and PUBLIC, for openid profile only)."""
    world: World = await world_factory(bank_a_overrides={"claims": KYC_CLAIMS})
    client = ClientSettings(
        client_id=KYC, type="public", redirect_uris=(APP_REDIRECT,), default_acr=ACR_A,
        scopes=("openid", "profile", "email", "date_of_birth", "offline_access"),
    )
    config = world.proxy.config
    return await proxy_with(world, dataclasses.replace(config,
                                                       clients=(*config.clients, client)))


async def released_claims(proxy: Proxy, client_id: str, scope: str
                          ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:  # fmt: skip
    """(ID token, userinfo, introspection) for a login of ``client_id`` asking ``scope``."""
    login = await proxy.login(client_id=client_id, scope=scope)
    resp = await proxy.exchange(login, client_id=client_id)
    assert resp.status == 200, await resp.text()
    tokens = await resp.json()
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    info = await proxy.http.get(f"{proxy.issuer}/userinfo",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status == 200, await info.text()
    return id_claims, await info.json(), await proxy.introspect(tokens["access_token"])


@pytest.mark.parametrize(("client_id", "scope", "user_claims"), [
    (PUBLIC, "openid", set()),
    (PUBLIC, "openid offline_access", set()),
    (PUBLIC, "openid profile", PROFILE),
    (KYC, "openid email", {"email"}),
    (KYC, "openid date_of_birth", {"date_of_birth"}),
    (KYC, "openid profile email date_of_birth", PROFILE | {"email", "date_of_birth"}),
])
async def test_claims_are_released_by_the_granted_scope(
    world_factory: WorldFactory, client_id: str, scope: str, user_claims: set[str]
) -> None:
    """OIDC Core §5.4: profile, email, address and phone each request their claims; a
    custom merchant claim is released by the scope of its name. The same in the ID token
    and at /userinfo; introspection shows none; sub, acr, authentication_level always."""
    proxy = await kyc_proxy(world_factory)
    id_claims, info, introspected = await released_claims(proxy, client_id, scope)
    assert set(id_claims) - ALWAYS == user_claims
    assert ALWAYS - {"nonce"} <= set(id_claims)
    assert set(info) == user_claims | {"sub"}
    assert info["sub"] == id_claims["sub"] == introspected["sub"]
    assert {"acr", "authentication_level"} <= set(introspected)
    assert not (set(introspected) & (PROFILE | {"email", "date_of_birth"}))
    if "date_of_birth" in user_claims:
        assert info["date_of_birth"] == info.get("birthdate", "1990-01-01")


async def test_a_narrower_refresh_narrows_the_claims(world_factory: WorldFactory) -> None:
    """RFC 6749 §6: a refresh may ask for less; the new ID token and the new access
    token's userinfo release only that. The first access token keeps its own scope."""
    proxy = await kyc_proxy(world_factory)
    login = await proxy.login(client_id=KYC, scope="openid profile email offline_access")
    first = await (await proxy.exchange(login, client_id=KYC)).json()
    narrowed = await proxy.post("/token", {"grant_type": "refresh_token", "client_id": KYC,
                                           "refresh_token": first["refresh_token"],
                                           "scope": "openid email"})
    assert narrowed.status == 200, await narrowed.text()
    tokens = await narrowed.json()
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert set(id_claims) - ALWAYS == {"email"}
    for access_token, expected in ((tokens["access_token"], {"email"}),
                                   (first["access_token"], PROFILE | {"email"})):
        info = await proxy.http.get(f"{proxy.issuer}/userinfo",
                                    headers={"Authorization": f"Bearer {access_token}"})
        assert set(await info.json()) == expected | {"sub"}


async def test_a_client_registered_for_openid_only_cannot_ask_for_profile(
    world: World,
) -> None:
    proxy = await proxy_with(world, dataclasses.replace(world.proxy.config, clients=(
        *world.proxy.config.clients,
        ClientSettings(client_id="merchant-bare", type="public", default_acr=ACR_A,
                       redirect_uris=(APP_REDIRECT,), scopes=("openid",)))))
    resp, _ = await proxy.authorize(client_id="merchant-bare", scope="openid profile")
    assert query_of(resp.headers["Location"])["error"] == "invalid_scope"
    id_claims, info, _ = await released_claims(proxy, "merchant-bare", "openid")
    assert set(id_claims) - ALWAYS == set() and set(info) == {"sub"}


OTHER_SECTOR = "merchant-partner"


def sector_config(config: Config, public_sector: str | None = None) -> Config:
    """``config`` with a client of another sector (same redirect URI, its own
    sector_identifier), and PUBLIC's sector set to ``public_sector`` if given."""
    clients = tuple(
        dataclasses.replace(c, sector_identifier=public_sector)
        if c.client_id == PUBLIC and public_sector else c
        for c in config.clients
    )
    partner = ClientSettings(client_id=OTHER_SECTOR, type="public", default_acr=ACR_A,
                             redirect_uris=(APP_REDIRECT,), scopes=("openid", "offline_access"),
                             sector_identifier="partner.example")
    return dataclasses.replace(config, clients=(*clients, partner))


async def subjects(proxy: Proxy, tokens: dict[str, Any], rs: tuple[str, str] = RS_PLAIN
                   ) -> set[str]:  # fmt: skip
    """The sub of the ID token, of /userinfo and of introspection."""
    id_sub = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"]
    info = await proxy.http.get(f"{proxy.issuer}/userinfo",
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
    return {id_sub, (await info.json())["sub"],
            (await proxy.introspect(tokens["access_token"], rs=rs))["sub"]}


async def login_tokens(proxy: Proxy, client_id: str) -> dict[str, Any]:
    login = await proxy.login(client_id=client_id, scope="openid offline_access",
                              acr_values=ACR_A)
    resp = await proxy.exchange(login, client_id=client_id)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_pairwise_subjects_are_per_sector(world: World) -> None:
    """OIDC Core §8.1: "the OpenID Provider MUST calculate a unique sub (subject) value
    for each Sector Identifier". Clients of one sector (the harness's all redirect to
    app.merchant.example) see the same sub; a client of another sector another one;
    each client's sub is one in the ID token, userinfo and introspection."""
    proxy = await proxy_with(world, sector_config(world.proxy.config))
    public = await subjects(proxy, await login_tokens(proxy, PUBLIC))
    same_sector = await subjects(proxy, await login_tokens(proxy, APP))
    partner = await subjects(proxy, await login_tokens(proxy, OTHER_SECTOR))
    assert len(public) == len(partner) == 1
    assert public == same_sector
    assert public != partner
    assert world.bank_a.user.sub not in public | partner


async def test_a_grant_keeps_its_sub_when_the_sector_changes(world: World) -> None:
    """The sub is stored in the grant: tokens of a login made before a client's sector
    changed (an upgrade, a config change) keep saying the sub they were issued with,
    refreshes included; the next login gets the new sector's sub."""
    before = await login_tokens(world.proxy, PUBLIC)
    old_sub = await subjects(world.proxy, before)
    moved = await proxy_with(world, sector_config(world.proxy.config,
                                                  public_sector="partner.example"))
    refreshed = await moved.refresh(before["refresh_token"])
    assert refreshed.status == 200, await refreshed.text()
    assert await subjects(moved, await refreshed.json()) == old_sub
    after = await subjects(moved, await login_tokens(moved, PUBLIC))
    assert after != old_sub
    assert after == await subjects(moved, await login_tokens(moved, OTHER_SECTOR))


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> StoreSettings | None:
    return StoreSettings(url="memory://") if request.param == "memory" else None


@pytest.mark.parametrize(("after", "same_pair"), [
    (2.0, True),     # the last millisecond of refresh_grace: 2
    (2.001, False),  # the first one after it
    (2.6, False),    # whole seconds on both sides took this for 2 s (int 2.6 - int 0.0)
])  # fmt: skip
async def test_refresh_grace_is_measured_to_the_millisecond(
    world_factory: WorldFactory, store_url: StoreSettings | None, clock: Clock, after: float,
    same_pair: bool,
) -> None:
    world: World = await world_factory(store=store_url, lifetimes=Lifetimes(refresh_grace=2))
    tokens = await world.proxy.tokens()
    rotated_at = clock.freeze(at=float(int(clock())))  # on a whole second: the worst case
    first = await world.proxy.refresh(tokens["refresh_token"])
    assert first.status == 200, await first.text()
    pair = await first.json()

    clock.frozen = rotated_at + after
    reuse = await world.proxy.refresh(tokens["refresh_token"])
    if same_pair:
        assert reuse.status == 200, await reuse.text()
        again = await reuse.json()
        assert (again["access_token"], again["refresh_token"]) == (
            pair["access_token"], pair["refresh_token"])
        assert (await world.proxy.introspect(pair["access_token"]))["active"] is True
    else:
        assert (reuse.status, (await reuse.json())["error"]) == (400, "invalid_grant")
        assert await world.proxy.introspect(pair["access_token"]) == {"active": False}


@pytest.mark.parametrize("revoked_by", ["the new refresh token", "a reuse after the window"])
async def test_no_grace_answer_after_the_grant_is_revoked(
    world_factory: WorldFactory, store_url: StoreSettings | None, clock: Clock,
    revoked_by: str,
) -> None:
    """The pair a rotation produced is kept for refresh_grace, but handed out again only
    while its grant lives: once revoked, a retry inside the window gets invalid_grant."""
    world: World = await world_factory(store=store_url, lifetimes=Lifetimes(refresh_grace=5))
    tokens = await world.proxy.tokens()
    clock.freeze()
    pair = await (await world.proxy.refresh(tokens["refresh_token"])).json()
    if revoked_by == "the new refresh token":
        revoked = await world.proxy.post("/revoke", {"token": pair["refresh_token"],
                                                     "client_id": PUBLIC})
        assert revoked.status == 200
    else:
        # the pair's own refresh token, rotated and reused 6 s later: the grant is revoked
        assert (await world.proxy.refresh(pair["refresh_token"])).status == 200
        clock.advance(6)
        reuse = await world.proxy.refresh(pair["refresh_token"])
        assert (await reuse.json())["error"] == "invalid_grant"
        clock.advance(-6)  # back inside the first rotation's window
    retry = await world.proxy.refresh(tokens["refresh_token"])
    assert (retry.status, (await retry.json())["error"]) == (400, "invalid_grant")
    assert await world.proxy.introspect(pair["access_token"]) == {"active": False}


async def test_a_refresh_token_names_its_grant_and_its_record_does_not_repeat_it(
    world_factory: WorldFactory, store_url: StoreSettings | None,
    faulty_store: Callable[[], FaultyStore],
) -> None:
    """``a2a_rt_{grant}.{secret}``: a refresh reads the token's record and the grant it
    names together, and the record keeps no grant id (Redis bytes per live token). A
    token whose grant part is changed names no record and uses up nothing."""
    world: World = await world_factory(store=store_url)
    first, second = await world.proxy.tokens(), await world.proxy.tokens()
    grant_part, dot, secret = first["refresh_token"].removeprefix("a2a_rt_").partition(".")
    assert dot and (len(grant_part), len(secret)) == (22, 43)
    assert first["access_token"].startswith(f"a2a_at_{grant_part}.")
    other_grant = second["refresh_token"].removeprefix("a2a_rt_").partition(".")[0]
    record = await faulty_store().find("rt", first["refresh_token"])  # the proxy's own store
    assert record is not None and set(record) == {"iat", "exp"}
    for forged in (f"a2a_rt_{other_grant}.{secret}", f"a2a_rt_{grant_part}{secret}",
                   f"a2a_rt_.{secret}", f"a2a_rt_{grant_part}.",
                   f"a2a_at_{grant_part}.{secret}"):
        resp = await world.proxy.refresh(forged)
        assert (resp.status, (await resp.json())["error"]) == (400, "invalid_grant"), forged
    resp = await world.proxy.refresh(first["refresh_token"])
    assert resp.status == 200, await resp.text()
    pair = await resp.json()
    assert pair["refresh_token"].startswith(f"a2a_rt_{grant_part}.")
    assert pair["refresh_token"] != first["refresh_token"]
    assert (await world.proxy.refresh(second["refresh_token"])).status == 200


async def test_a_refresh_token_of_the_older_form_keeps_working(
    world_factory: WorldFactory, store_url: StoreSettings | None, clock: Clock,
    faulty_store: Callable[[], FaultyStore],
) -> None:
    """A refresh token issued before refresh tokens named their grant (``a2a_rt_`` and
    256 bits; its record holds ``grant_id``) is still one: it refreshes (to a token of
    the new form), a retry inside refresh_grace gets the same pair, a use after it
    revokes the grant (RFC 9700 §4.14.2), and /revoke of another revokes its grant."""
    world: World = await world_factory(store=store_url, lifetimes=Lifetimes(refresh_grace=1))
    store = faulty_store()  # the proxy's own store

    async def older_form(tokens: dict[str, Any]) -> tuple[str, str]:
        """A token of the older form for the login of ``tokens``, and its grant id."""
        grant_id = "a2a_gr_" + tokens["refresh_token"].removeprefix("a2a_rt_").partition(".")[0]
        record = await store.find("rt", tokens["refresh_token"])
        assert record is not None
        token = new_value(REFRESH_TOKEN)
        await store.upsert("rt", token, {**record, "grant_id": grant_id}, 3600)
        await store.destroy("rt", tokens["refresh_token"])
        return token, grant_id

    tokens, kept = await world.proxy.tokens(), await world.proxy.tokens()
    old, grant_id = await older_form(tokens)
    kept_old, _ = await older_form(kept)
    resp = await world.proxy.refresh(old)
    assert resp.status == 200, await resp.text()
    pair = await resp.json()
    assert pair["refresh_token"].startswith(grant_id.replace("a2a_gr_", "a2a_rt_") + ".")
    retry = await world.proxy.refresh(old)
    assert retry.status == 200
    assert (await retry.json())["refresh_token"] == pair["refresh_token"]
    clock.advance(1.1)
    reuse = await world.proxy.refresh(old)
    assert (reuse.status, (await reuse.json())["error"]) == (400, "invalid_grant")
    assert await world.proxy.introspect(pair["access_token"]) == {"active": False}
    assert (await world.proxy.introspect(kept["access_token"]))["active"] is True
    revoked = await world.proxy.post("/revoke", {"token": kept_old, "client_id": PUBLIC})
    assert revoked.status == 200
    assert await world.proxy.introspect(kept["access_token"]) == {"active": False}
