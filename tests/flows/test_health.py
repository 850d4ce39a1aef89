"""Discovery, /jwks, /healthz and /readyz as operators and clients see them."""

from __future__ import annotations

from tests.flows.harness import ACR_A, ACR_B, World, WorldFactory


async def test_discovery_and_jwks(world: World) -> None:
    resp = await world.proxy.http.get(
        f"{world.proxy.issuer}/.well-known/openid-configuration",
        headers={"Host": "evil.example"},
    )
    meta = await resp.json()
    issuer = world.proxy.issuer
    assert meta["issuer"] == issuer  # from config, never from Host
    assert meta["authorization_endpoint"] == f"{issuer}/authorize"
    assert meta["token_endpoint"] == f"{issuer}/token"
    assert meta["introspection_endpoint"] == f"{issuer}/introspect"
    assert meta["revocation_endpoint"] == f"{issuer}/revoke"
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["acr_values_supported"] == [ACR_A, ACR_B]
    jwks = await (await world.proxy.http.get(meta["jwks_uri"])).json()
    assert [k["kid"] for k in jwks["keys"]] == [world.proxy.config.keys.signing[0].kid]
    assert all("d" not in k for k in jwks["keys"])


async def test_readyz_reports_banks_but_a_bank_down_does_not_fail_it(
    world_factory: WorldFactory,
) -> None:
    world: World = await world_factory(bank_a_overrides={"issuer": "http://127.0.0.1:9"})
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/readyz")
    assert resp.status == 200
    body = await resp.json()
    assert body["store"] == "ok"
    assert body["banks"]["bank-a"]["metadata"] == "unavailable"
    assert body["banks"]["bank-b"]["metadata"] == "ok"
    assert (await world.proxy.http.get(f"{world.proxy.issuer}/healthz")).status == 200


async def test_app_association_files(world: World) -> None:
    aasa = await (await world.proxy.http.get(
        f"{world.proxy.issuer}/.well-known/apple-app-site-association")).json()
    assert aasa == {"applinks": {"details": [{
        "appIDs": ["TEAMID.com.merchant.app"],
        "components": [{"/": "/callback/*"}, {"/": "/resume/*"}]}]}}
    links = await (await world.proxy.http.get(
        f"{world.proxy.issuer}/.well-known/assetlinks.json")).json()
    assert links[0]["target"]["package_name"] == "com.merchant.app"
    assert links[0]["relation"] == ["delegate_permission/common.handle_all_urls"]
    assert len(links[0]["target"]["sha256_cert_fingerprints"][0].split(":")) == 32
