"""``app2app-proxy revoke``: an operator revokes every live token of a subject, a client
or one grant, from another process, against the Redis the proxy uses."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from proxy.model.tokens import ACCESS_TOKEN, fingerprint, grant_of
from proxy.ops.cli import main
from proxy.ops.keys import generate_signing_key
from proxy.ops.revoke import Revoked, revoke
from tests.flows.harness import (
    ACR_B,
    APP_REDIRECT,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    PUBLIC,
    World,
)

ROOT = Path(__file__).resolve().parents[2]


async def confidential_tokens(world: World) -> dict[str, Any]:
    login = await world.proxy.login(client_id=CONFIDENTIAL)
    form = {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "code_verifier": login.verifier}
    resp = await world.proxy.post("/token", form, auth=(CONFIDENTIAL, CONFIDENTIAL_SECRET))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def assert_revoked(world: World, tokens: dict[str, Any]) -> None:
    """The PUBLIC client's access token is inactive and its refresh token refused."""
    assert await world.proxy.introspect(tokens["access_token"]) == {"active": False}
    resp = await world.proxy.refresh(tokens["refresh_token"])
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_grant")


async def assert_live(world: World, tokens: dict[str, Any]) -> None:
    assert (await world.proxy.introspect(tokens["access_token"]))["active"] is True


async def sub_of(world: World, tokens: dict[str, Any]) -> str:
    sub: str = (await world.proxy.introspect(tokens["access_token"]))["sub"]
    return sub


def grant_named(access_token: str) -> str:
    """The grant id an access token names (a2a_at_{grant}.{secret})."""
    grant_id = grant_of(ACCESS_TOKEN, access_token)
    assert grant_id is not None
    return grant_id


def write_config(tmp_path: Path, world: World, store_url: str | None = None) -> Path:
    """The operator's file: what the revoke command reads of it is ``store``."""
    (tmp_path / "signing.jwk").write_text(generate_signing_key("ES256").export(private_key=True))
    path = tmp_path / "config.yaml"
    path.write_text(f"""
issuer: {world.proxy.issuer}
store: {{url: "{store_url or world.store.url}", prefix: "{world.store.prefix}"}}
keys:
  signing: [{{file: signing.jwk}}]
  token_encryption: {secrets.token_urlsafe(32)}
subject: {{type: pairwise, salt: test-salt}}
banks:
  - id: bank-a
    acr_values: [urn:merchant:acr:bank-a]
    kind: oidc
    issuer: {world.bank_a.issuer}
    client_id: merchant-at-a
    client_auth: client_secret_basic
    client_secret: bank-a-secret-{"s" * 20}
clients:
  - client_id: {PUBLIC}
    type: public
    redirect_uris: [{APP_REDIRECT}]
    default_acr: urn:merchant:acr:bank-a
""")
    return path


async def run_cli(*args: str) -> tuple[int, str, str]:
    """The real command, in its own process (its own event loop and logging)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "revoke", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_revoke_by_sub_from_the_command_line(world: World, tmp_path: Path) -> None:
    # one user twice at bank-a (one sandbox user: one pairwise sub), another at bank-b
    first, second = await world.proxy.tokens(), await world.proxy.tokens()
    other = await world.proxy.tokens(acr_values=ACR_B)
    sub = await sub_of(world, first)
    assert await sub_of(world, second) == sub != await sub_of(world, other)
    # a third grant of the same user, already revoked by the app (RFC 7009): gone, and
    # neither revoked nor scanned again
    third = await world.proxy.tokens()
    gone = await world.proxy.post("/revoke", {"token": third["refresh_token"],
                                              "client_id": PUBLIC})
    assert gone.status == 200

    code, out, err = await run_cli("--config", str(write_config(tmp_path, world)), "--sub", sub)

    assert code == 0, err
    assert out == "revoked 2 grant(s) by sub (3 grant records scanned)\n"
    audit = json.loads(next(line for line in err.splitlines() if '"token.revoked"' in line))
    assert audit["by"] == "operator" and audit["sub_fingerprint"] == fingerprint(sub)
    assert (audit["grants"], audit["scanned"]) == (2, 3) and "stale" not in audit
    assert sub not in err + out
    for tokens in (first, second):
        await assert_revoked(world, tokens)
    await assert_live(world, other)
    refreshed = await world.proxy.refresh(other["refresh_token"])
    assert refreshed.status == 200, await refreshed.text()
    # the user logs in again: a new grant, revocable again; two grants are left to scan
    again = await world.proxy.tokens()
    assert await revoke(world.store, "sub", sub) == Revoked(grants=1, scanned=2)
    await assert_revoked(world, again)


async def test_revoke_one_grant(world: World) -> None:
    first, second = await world.proxy.tokens(), await world.proxy.tokens()
    grant_id = grant_named(first["access_token"])
    # a refresh keeps the grant: the refreshed tokens go with it
    refreshed = await (await world.proxy.refresh(first["refresh_token"])).json()

    with capture_logs() as logs:
        assert await revoke(world.store, "grant", grant_id) == Revoked(grants=1, scanned=0)

    await assert_revoked(world, refreshed)
    await assert_live(world, second)
    assert logs == [{"event": "token.revoked", "log_level": "info", "by": "operator",
                     "selector": "grant", "grant_fingerprint": fingerprint(grant_id),
                     "grants": 1, "scanned": 0}]
    # and it is gone: revoking it again finds nothing, the sub has only the other grant
    sub = await sub_of(world, second)
    assert await revoke(world.store, "grant", grant_id) == Revoked(grants=0, scanned=0)
    assert await revoke(world.store, "sub", sub) == Revoked(grants=1, scanned=1)
    await assert_revoked(world, second)


async def test_revoke_by_client(world: World) -> None:
    at_a, at_b = await world.proxy.tokens(), await world.proxy.tokens(acr_values=ACR_B)
    web = await confidential_tokens(world)  # the same user as at_a, another client

    with capture_logs() as logs:
        assert await revoke(world.store, "client", PUBLIC) == Revoked(grants=2, scanned=3)

    for tokens in (at_a, at_b):
        await assert_revoked(world, tokens)
    await assert_live(world, web)
    assert logs[0]["client_id"] == PUBLIC and logs[0]["selector"] == "client"
    # the confidential client's grant is still found by its sub
    assert await revoke(world.store, "sub", await sub_of(world, web)) == Revoked(1, 1)
    assert await world.proxy.introspect(web["access_token"]) == {"active": False}


async def test_nothing_to_revoke(world: World) -> None:
    assert await revoke(world.store, "sub", "nobody") == Revoked(grants=0, scanned=0)
    assert await revoke(world.store, "client", "no-such-client") == Revoked(0, 0)
    assert await revoke(world.store, "grant", "a2a_gr_unknown") == Revoked(0, 0)
    # with grants in the store: each is read, none is revoked
    tokens = await world.proxy.tokens()
    assert await revoke(world.store, "sub", "nobody") == Revoked(grants=0, scanned=1)
    assert await revoke(world.store, "client", "no-such-client") == Revoked(0, 1)
    await assert_live(world, tokens)


async def test_a_selector_matches_its_own_field_only(world: World) -> None:
    """A grant of another sub or another client is left alone, even when the value given
    is what the grant holds in its other field (a sub that equals a client_id)."""
    public, web = await world.proxy.tokens(), await confidential_tokens(world)
    sub = await sub_of(world, public)
    assert await sub_of(world, web) == sub  # one user, two clients

    assert await revoke(world.store, "sub", PUBLIC) == Revoked(grants=0, scanned=2)
    assert await revoke(world.store, "client", sub) == Revoked(grants=0, scanned=2)
    assert await revoke(world.store, "grant", sub) == Revoked(grants=0, scanned=0)
    assert await revoke(world.store, "client", CONFIDENTIAL) == Revoked(grants=1, scanned=2)

    await assert_live(world, public)
    assert await world.proxy.introspect(web["access_token"]) == {"active": False}


async def test_memory_store_is_refused(world: World, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, world, store_url="memory://")
    assert main(["revoke", "--config", str(path), "--client", PUBLIC]) == 2
    assert "memory://" in capsys.readouterr().err


def test_bad_config_and_bad_arguments(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["revoke", "--config", str(tmp_path / "missing.yaml"), "--sub", "x"]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    for argv in (["--sub", "a", "--client", "b"], []):
        with pytest.raises(SystemExit) as exited:
            main(["revoke", "--config", str(tmp_path / "c.yaml"), *argv])
        assert exited.value.code == 2
    assert main(["revoke", "--config", str(tmp_path / "c.yaml"), "--sub", " "]) == 2
    assert "--sub must not be empty" in capsys.readouterr().err
