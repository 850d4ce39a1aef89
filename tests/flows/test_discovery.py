"""Discovery says what the server does, no more, no less.

Each advertised value of ``/.well-known/openid-configuration`` is derived here from what
the server does when asked: every advertised method, alg, type or value works, and the
ones a client might try that are not advertised are refused (RFC 8414 §2, OIDC Discovery
§3: the metadata lists what the server "supports"). And the other way round: every
protocol endpoint the server answers on is in the document.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import pytest
from jwcrypto import jwk

from proxy.config.settings import ClientSettings, ResourceServer, Subject
from proxy.oauth.own_apps import APP2APP_GRANT, TOKEN_EXCHANGE
from tests.flows.harness import (
    ACR_A,
    APP,
    APP_REDIRECT,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    FAPI_CLIENT,
    PUBLIC,
    RS_PLAIN,
    DPoPKey,
    World,
    app_redirect_params,
    new_request,
)
from tests.flows.own_apps import (
    DeviceKey,
    ShopRequest,
    approve,
    exchange_form,
    own_apps,
    wallet_login,
)
from tests.security.cases import ASSERTION_TYPE, assertion

# client_secret_jwt is tried with the clients' real secrets, shorter than HS256 likes
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
BOGUS_REFRESH = {"grant_type": "refresh_token", "refresh_token": "a2a_rt_unknown"}
# routes that are steps of a flow the server itself hands out (or operations), not
# endpoints a client finds through discovery
NOT_ADVERTISED = {
    "/.well-known/openid-configuration", "/.well-known/apple-app-site-association",
    "/.well-known/assetlinks.json", "/authorize/pick/{pick_id}/{bank_id}",
    "/authorize/pick/{pick_id}", "/authorize/continue/{handle}", "/favicon.ico",
    "/native/authorize/pick",
    "/authorize/status/{handle}", "/resume/{handle}", "/callback/{bank_id}",
    "/healthz", "/readyz", "/metrics",
    # a gateway's check (docs/gateways.md): RFC 8414 and OIDC Discovery have no metadata
    # name for it, and its callers are gateways their operator configures, not clients
    "/gateway/check{tail}",
}  # fmt: skip
# a client with a key for every JWS alg a client might sign an assertion with
ALGS_CLIENT = "merchant-every-alg"
ALGS_SERVER = "ledger-every-alg"
KEYS = {
    "ES256": jwk.JWK.generate(kty="EC", crv="P-256", kid="es256"),
    "ES384": jwk.JWK.generate(kty="EC", crv="P-384", kid="es384"),
    "ES512": jwk.JWK.generate(kty="EC", crv="P-521", kid="es512"),
    "EdDSA": jwk.JWK.generate(kty="OKP", crv="Ed25519", kid="eddsa"),
    "RSA": jwk.JWK.generate(kty="RSA", size=2048, kid="rsa"),
}
ASSERTION_ALGS = ("ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "PS256", "PS384",
                  "HS256")


async def metadata(world: World) -> dict[str, Any]:
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/.well-known/openid-configuration")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


def every_alg(world: World) -> None:
    """Reload with a client and a resource server that hold a key of every kind."""
    public = {"keys": [k.export(private_key=False, as_dict=True) for k in KEYS.values()]}
    config = world.proxy.config
    world.reload(dataclasses.replace(
        config,
        clients=(*config.clients, ClientSettings(
            client_id=ALGS_CLIENT, type="confidential", redirect_uris=(APP_REDIRECT,),
            scopes=("openid",), jwks=public)),
        resource_servers=(*config.resource_servers,
                          ResourceServer(client_id=ALGS_SERVER, jwks=public))))


def client_auth(world: World, client_id: str, alg: str, secret: str = "s" * 32
                ) -> dict[str, str]:  # fmt: skip
    """A client assertion signed with ``alg``: by the key of that kind, or for HS* (OIDC
    Core §9 client_secret_jwt) an HMAC under the client's ``secret``."""
    if alg.startswith("HS"):
        now = int(time.time())
        signed = jwt.encode({"iss": client_id, "sub": client_id, "aud": world.proxy.issuer,
                             "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex},
                            secret, algorithm=alg)
    else:
        key = KEYS["RSA" if alg[:2] in ("RS", "PS") else alg]
        signed = assertion(client_id, world.proxy.issuer, key, alg)
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


async def authenticated(resp: aiohttp.ClientResponse) -> bool:
    """True when the endpoint took the caller's authentication (whatever it said of the
    rest), False when it answered invalid_client."""
    if resp.status == 401:
        assert (await resp.json())["error"] == "invalid_client"
        return False
    assert resp.status in (200, 400), await resp.text()
    if resp.status == 400:
        assert (await resp.json())["error"] != "invalid_client"
    return True


# --- endpoints --------------------------------------------------------------------


async def test_every_protocol_endpoint_is_advertised_and_nothing_else(world: World) -> None:
    meta = await metadata(world)
    issuer = world.proxy.issuer
    advertised = {urlsplit(v).path for k, v in meta.items()
                  if k.endswith("_endpoint") or k == "jwks_uri"}
    assert all(v.startswith(issuer + "/") for k, v in meta.items() if k.endswith("_endpoint"))
    assert world.app is not None
    served = {r.canonical for r in world.app.router.resources()}
    assert served - NOT_ADVERTISED == advertised
    assert meta["issuer"] == issuer


# --- the authorization request ------------------------------------------------------


async def push_error(world: World, **params: str | None) -> str | None:
    """What /par (the same checks as /authorize, RFC 9126 §2.1) says of a request of the
    PUBLIC client with ``params``: None when it takes it."""
    _, form = new_request(**params)
    resp = await world.proxy.post("/par", form)
    if resp.status == 201:
        return None
    error: str = (await resp.json())["error"]
    return error


async def test_response_types_modes_and_code_challenge_methods(world: World) -> None:
    meta = await metadata(world)
    for response_type in meta["response_types_supported"]:
        assert await push_error(world, response_type=response_type) is None
    for response_type in ("token", "id_token", "code id_token", "code token",
                          "code id_token token", "id_token token", "none"):
        assert response_type not in meta["response_types_supported"]
        assert await push_error(world, response_type=response_type) == (
            "unsupported_response_type")
    for mode in meta["response_modes_supported"]:
        assert await push_error(world, response_mode=mode) is None
    for mode in ("fragment", "form_post", "jwt", "query.jwt", "form_post.jwt"):
        assert mode not in meta["response_modes_supported"]
        assert await push_error(world, response_mode=mode) == "invalid_request"
    for method in meta["code_challenge_methods_supported"]:
        assert await push_error(world, code_challenge_method=method) is None
    for method in ("plain", "S512", None):
        assert await push_error(world, code_challenge_method=method) == "invalid_request"
    # a login answers in the query, with iss (RFC 9207 §3: "whether the authorization
    # server provides the iss parameter in the authorization response"), errors too
    assert meta["authorization_response_iss_parameter_supported"] is True
    login = await world.proxy.login()
    assert login.params["iss"] == world.proxy.issuer
    refused, _ = await world.proxy.authorize(scope="openid unknown-scope")
    assert app_redirect_params(refused)["iss"] == world.proxy.issuer


async def test_scopes_supported_are_the_scopes_some_client_may_ask_for(world: World) -> None:
    meta = await metadata(world)
    # the clients that push with client_id alone or a secret
    pushers: list[tuple[str, tuple[str, str] | None]] = [
        (PUBLIC, None), (APP, None), (CONFIDENTIAL, (CONFIDENTIAL, CONFIDENTIAL_SECRET))]
    pushers += [(c.client_id, None) for c in world.proxy.config.clients
                if c.type == "public" and c.client_id not in (PUBLIC, APP)]

    async def taken_by_someone(scope: str) -> bool:
        for client_id, auth in pushers:
            _, form = new_request(client_id=client_id, scope=f"openid {scope}")
            resp = await world.proxy.post("/par", form, auth=auth)
            if resp.status == 201:
                return True
            assert (await resp.json())["error"] == "invalid_scope"
        return False

    assert "openid" in meta["scopes_supported"]  # OIDC Discovery: "MUST support the openid"
    for scope in meta["scopes_supported"]:
        assert await taken_by_someone(scope), scope
    for scope in ("email", "address", "phone", "payments", "admin"):
        assert scope not in meta["scopes_supported"]
        assert not await taken_by_someone(scope), scope


async def test_acr_values_supported_are_the_acr_values_logins_get(world: World) -> None:
    meta = await metadata(world)
    assert meta["acr_values_supported"]
    for acr in meta["acr_values_supported"]:
        login = await world.proxy.login(client_id=APP, acr_values=acr)
        tokens = await (await world.proxy.exchange(login, client_id=APP)).json()
        assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["acr"] == acr
    # one that is not advertised routes nowhere: the picker asks which bank
    resp, _ = await world.proxy.authorize(client_id=APP, acr_values="urn:merchant:acr:other")
    assert resp.status == 200 and resp.content_type == "text/html"


async def test_request_objects_and_the_claims_parameter_are_not_supported(world: World
                                                                          ) -> None:  # fmt: skip
    meta = await metadata(world)
    assert meta["request_parameter_supported"] is False
    resp, _ = await world.proxy.authorize(request="eyJhbGciOiJub25lIn0.e30.")
    assert app_redirect_params(resp)["error"] == "request_not_supported"
    assert meta["request_uri_parameter_supported"] is False
    by_reference = await world.proxy.http.get(
        f"{world.proxy.issuer}/authorize", allow_redirects=False,
        params={"client_id": PUBLIC, "request_uri": "https://app.merchant.example/req.jwt"})
    assert by_reference.status == 400 and "Location" not in by_reference.headers
    # RFC 9126 §5: a request_uri from /par is usable "regardless of ... metadata such as
    # request_uri_parameter_supported"
    _, form = new_request()
    pushed = await (await world.proxy.post("/par", form)).json()
    from_par = await world.proxy.http.get(
        f"{world.proxy.issuer}/authorize", allow_redirects=False,
        params={"client_id": PUBLIC, "request_uri": pushed["request_uri"]})
    assert from_par.status == 302
    assert from_par.headers["Location"].startswith(world.bank_a.issuer)
    # claims_parameter_supported false: the parameter is ignored, not honoured
    assert meta["claims_parameter_supported"] is False
    asked = json.dumps({"id_token": {"email": {"essential": True}}})
    tokens = await world.proxy.tokens(claims=asked)
    assert "email" not in jwt.decode(tokens["id_token"], options={"verify_signature": False})


async def test_require_pushed_authorization_requests_when_every_client_must(world: World
                                                                            ) -> None:  # fmt: skip
    assert (await metadata(world))["require_pushed_authorization_requests"] is False
    direct, _ = await world.proxy.authorize()
    assert direct.headers["Location"].startswith(world.bank_a.issuer)  # no PAR needed

    config = world.proxy.config
    world.reload(dataclasses.replace(
        config, clients=tuple(c for c in config.clients if c.profile == "fapi2")))
    assert (await metadata(world))["require_pushed_authorization_requests"] is True
    refused, login = await world.proxy.authorize(client_id=FAPI_CLIENT, scope="openid")
    params = app_redirect_params(refused)
    assert (params["error"], params["state"]) == ("invalid_request", login.state)


# --- the token side --------------------------------------------------------------------


async def test_grant_types_supported(world: World) -> None:
    meta = await metadata(world)
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    tokens = await world.proxy.tokens()  # authorization_code
    assert (await world.proxy.refresh(tokens["refresh_token"])).status == 200
    for grant_type in ("password", "client_credentials", "implicit",
                       "urn:ietf:params:oauth:grant-type:device_code",
                       "urn:openid:params:grant-type:ciba",
                       "urn:ietf:params:oauth:grant-type:token-exchange",
                       "urn:ietf:params:oauth:grant-type:jwt-bearer"):
        assert grant_type not in meta["grant_types_supported"]
        resp = await world.proxy.post("/token", {"grant_type": grant_type, "client_id": PUBLIC})
        assert (resp.status, (await resp.json())["error"]) == (400, "unsupported_grant_type")


async def test_the_own_apps_grant_types_are_advertised_when_a_client_may_use_them(
    world: World,
) -> None:
    """With an approver and Native SSO clients, /token takes an approval and the token
    exchange, and discovery says so (test_grant_types_supported: without them, neither)."""
    assert (await metadata(world))["native_sso_supported"] is False
    own_apps(world)
    meta = await metadata(world)
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token",
                                                  APP2APP_GRANT, TOKEN_EXCHANGE}
    assert meta["native_sso_supported"] is True
    assert "device_sso" in meta["scopes_supported"]
    key = DeviceKey.generate()
    wallet = await wallet_login(world.proxy, key)  # device_sso: a device_secret
    assert (await approve(world.proxy, wallet, key, ShopRequest())).status == 200
    exchanged = await world.proxy.post("/token", exchange_form(wallet["id_token"],
                                                               wallet["device_secret"]))
    assert exchanged.status == 200


Call = Callable[[dict[str, str], tuple[str, str] | None], Awaitable[aiohttp.ClientResponse]]


def merchant_methods(world: World) -> dict[str, tuple[dict[str, str], tuple[str, str] | None]]:
    """Each client authentication method a client might try: its form and Basic pair."""
    return {
        "none": ({"client_id": PUBLIC}, None),
        "client_secret_basic": ({}, (CONFIDENTIAL, CONFIDENTIAL_SECRET)),
        "client_secret_post": ({"client_id": CONFIDENTIAL,
                                "client_secret": CONFIDENTIAL_SECRET}, None),
        "private_key_jwt": (client_auth(world, ALGS_CLIENT, "ES256"), None),
        "client_secret_jwt": (client_auth(world, CONFIDENTIAL, "HS256", CONFIDENTIAL_SECRET),
                              None),
    }


@pytest.mark.parametrize("endpoint", ["token", "revocation"])
async def test_client_authentication_methods_and_algs(world: World, endpoint: str) -> None:
    every_alg(world)
    meta = await metadata(world)
    path = urlsplit(meta[f"{endpoint}_endpoint"]).path
    body = BOGUS_REFRESH if endpoint == "token" else {"token": "a2a_rt_unknown"}
    works = set()
    for method, (form, basic) in merchant_methods(world).items():
        if await authenticated(await world.proxy.post(path, {**body, **form}, auth=basic)):
            works.add(method)
    assert works == set(meta[f"{endpoint}_endpoint_auth_methods_supported"])
    # RFC 8414 §2: the algs "supported by the token endpoint for the signature on the JWT
    # ... used to authenticate the client"
    signed = set()
    for alg in ASSERTION_ALGS:
        resp = await world.proxy.post(path, {**body, **client_auth(world, ALGS_CLIENT, alg)})
        if await authenticated(resp):
            signed.add(alg)
    assert signed == set(meta[f"{endpoint}_endpoint_auth_signing_alg_values_supported"])


async def test_introspection_authentication_methods_and_algs(world: World) -> None:
    every_alg(world)
    meta = await metadata(world)
    path = urlsplit(meta["introspection_endpoint"]).path
    body = {"token": "a2a_at_unknown"}
    methods = {
        "client_secret_basic": ({}, RS_PLAIN),
        "client_secret_post": ({"client_id": RS_PLAIN[0], "client_secret": RS_PLAIN[1]}, None),
        "none": ({"client_id": RS_PLAIN[0]}, None),
        "private_key_jwt": (client_auth(world, ALGS_SERVER, "ES256"), None),
        "client_secret_jwt": (client_auth(world, RS_PLAIN[0], "HS256", RS_PLAIN[1]), None),
    }
    works = set()
    for method, (form, basic) in methods.items():
        if await authenticated(await world.proxy.post(path, {**body, **form}, auth=basic)):
            works.add(method)
    assert works == set(meta["introspection_endpoint_auth_methods_supported"])
    signed = set()
    for alg in ASSERTION_ALGS:
        resp = await world.proxy.post(path, {**body, **client_auth(world, ALGS_SERVER, alg)})
        if await authenticated(resp):
            signed.add(alg)
    assert signed == set(meta["introspection_endpoint_auth_signing_alg_values_supported"])


async def test_dpop_signing_algs(world: World) -> None:
    meta = await metadata(world)
    keys = {"ES256": DPoPKey.generate("ES256"), "EdDSA": DPoPKey.generate("EdDSA"),
            "RS256": DPoPKey.generate("RS256"), "PS256": DPoPKey.generate("PS256"),
            "ES384": DPoPKey(jwk.JWK.generate(kty="EC", crv="P-384"), "ES384"),
            "ES512": DPoPKey(jwk.JWK.generate(kty="EC", crv="P-521"), "ES512")}
    accepted = set()
    for alg, key in keys.items():
        resp = await world.proxy.dpop_post("/token", {**BOGUS_REFRESH, "client_id": PUBLIC}, key)
        error = (await resp.json())["error"]
        assert error in ("invalid_grant", "invalid_dpop_proof"), (alg, error)
        if error == "invalid_grant":  # the proof passed; the refresh token did not
            accepted.add(alg)
    assert accepted == set(meta["dpop_signing_alg_values_supported"])


# --- what the tokens say ---------------------------------------------------------------


async def test_id_token_and_introspection_signing_algs(world: World) -> None:
    meta = await metadata(world)
    jwks = await (await world.proxy.http.get(meta["jwks_uri"])).json()
    published = {key["alg"] for key in jwks["keys"]}
    assert set(meta["id_token_signing_alg_values_supported"]) == published
    tokens = await world.proxy.tokens()
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] in published
    assert set(meta["introspection_signing_alg_values_supported"]) == published
    resp = await world.proxy.http.post(
        meta["introspection_endpoint"], data={"token": tokens["access_token"]},
        headers={"Authorization": aiohttp.encode_basic_auth(*RS_PLAIN),
                 "Accept": "application/token-introspection+jwt"})
    assert jwt.get_unverified_header(await resp.text())["alg"] in published


async def test_claims_supported_are_the_claims_a_login_gives(world: World) -> None:
    meta = await metadata(world)
    tokens = await world.proxy.tokens(acr_values=ACR_A)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    info = await (await world.proxy.http.get(
        meta["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"})).json()
    given = set(claims) | set(info)
    # at_hash and nonce protect the ID token itself; they say nothing of the user
    assert given - {"at_hash", "nonce"} == set(meta["claims_supported"])


@pytest.mark.parametrize("rule", ["pairwise", "bank"])
async def test_subject_types_supported(world: World, rule: str) -> None:
    """OIDC Core §8: public, "the same sub (subject) value to all Clients"; pairwise, "a
    different sub value to each Client"."""
    # two clients of two sectors (OIDC Core §8.1: pairwise values are per sector)
    config = world.proxy.config
    config = dataclasses.replace(config, clients=tuple(
        dataclasses.replace(c, sector_identifier="other.merchant.example")
        if c.client_id == CONFIDENTIAL else c for c in config.clients))
    if rule == "bank":
        config = dataclasses.replace(config, subject=Subject(type="bank"))
    world.reload(config)

    async def sub_for(client_id: str, auth: tuple[str, str] | None) -> str:
        login = await world.proxy.login(client_id=client_id, acr_values=ACR_A)
        form = {"grant_type": "authorization_code", "code": login.code,
                "redirect_uri": APP_REDIRECT, "code_verifier": login.verifier}
        if auth is None:
            form["client_id"] = client_id
        tokens = await (await world.proxy.post("/token", form, auth=auth)).json()
        sub: str = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"]
        return sub

    subs = {await sub_for(PUBLIC, None),
            await sub_for(CONFIDENTIAL, (CONFIDENTIAL, CONFIDENTIAL_SECRET))}
    expected = ["public"] if len(subs) == 1 else ["pairwise"]
    assert (await metadata(world))["subject_types_supported"] == expected
