"""The logs of a whole login are JSON lines with request context and no secret in them."""

from __future__ import annotations

import io
import json

from tests.flows.harness import CONFIDENTIAL_SECRET, RS_BANK, World


async def test_no_secret_in_the_logs_of_a_whole_login(world: World,
                                                      log_buffer: io.StringIO) -> None:
    login = await world.proxy.login()
    resp = await world.proxy.exchange(login)
    tokens = await resp.json()
    info = await world.proxy.introspect(tokens["access_token"], rs=RS_BANK)
    refreshed = await (await world.proxy.refresh(tokens["refresh_token"])).json()
    await world.proxy.exchange(login)  # a replay, logged as a warning
    await world.proxy.post("/revoke", {"token": refreshed["refresh_token"],
                                       "client_id": "merchant-ios"})

    bank_authorize = world.bank_a.last("/authorize").query
    bank_token_request = next(r for r in world.bank_a.requests if r.path == "/token")
    secrets = {
        "merchant code": login.code,
        "code_verifier": login.verifier,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "id token": tokens["id_token"],
        "rotated refresh token": refreshed["refresh_token"],
        "bank access token": info["bank_access_token"],
        "bank code": bank_token_request.form["code"],
        "bank state": bank_authorize["state"],
        "bank nonce": bank_authorize["nonce"],
        "bank client secret": world.proxy.config.banks[0].client_secret or "",
        "client secret": CONFIDENTIAL_SECRET,
        "resource server secret": RS_BANK[1],
    }
    text = log_buffer.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) >= 8
    for name, value in secrets.items():
        assert value and value not in text, f"{name} appears in the logs"
    summaries = [line for line in lines if line["event"] == "request"]
    assert all(line["request_id"] and line["status"] for line in summaries)
    callback = next(line for line in summaries if line["route"] == "/callback/{bank_id}")
    assert (callback["bank_id"], callback["client_id"]) == ("bank-a", "merchant-ios")
    assert any(line["event"] == "code.replayed" for line in lines)
