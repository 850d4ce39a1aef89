"""Signing key rotation: the signer's choice over time, /jwks, the start-up log, the
``keys status`` and ``keys plan`` commands, and a whole login across an activation."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from jwcrypto import jwk
from structlog.testing import capture_logs

from proxy.config.keys import token_key_id
from proxy.config.rotation import CLOCK_LEEWAY, iso, key_status, retention, timeline
from proxy.config.settings import Keys, Lifetimes, SigningKey
from proxy.oauth.jose import NoSigningKey, Signer
from proxy.ops.cli import main
from proxy.ops.keys import generate_signing_key
from tests.flows.harness import PUBLIC, Proxy, WorldFactory, b64, run_proxy, world_factory
from tests.ports import free_port

__all__ = ["world_factory"]  # the fixture, for the login test

OLD = generate_signing_key("ES256")
NEW = generate_signing_key("EdDSA")
NEXT = generate_signing_key("ES256")
T1, T2, T3 = 1_000_000, 1_000_600, 1_090_000


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What a relying party does: the key named by kid in /jwks, with that key's alg."""
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[key.algorithm_name],
                                        options={"verify_aud": False, "verify_exp": False})
    return claims


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


# -- the signer over a timeline ---------------------------------------------------

# OLD signs until T2; NEW is published at once but signs from T1; NEXT from T3
SCHEDULE = (
    SigningKey(OLD, not_after=T2, file="keys/old.jwk"),
    SigningKey(NEW, not_before=T1, file="keys/new.jwk"),
    SigningKey(NEXT, not_before=T3, file="keys/next.jwk"),
)


@pytest.mark.parametrize(("now", "signer"), [
    (0, OLD), (T1 - 1, OLD),            # NEW is published but not yet due
    (T1, NEW), (T2 - 1, NEW), (T2, NEW),  # the newest due key wins; OLD's end changes nothing
    (T3 - 1, NEW), (T3, NEXT), (T3 * 10, NEXT),
])  # fmt: skip
def test_the_newest_due_key_signs(now: int, signer: jwk.JWK) -> None:
    clock = Clock(now)
    signer_ = Signer(SCHEDULE, clock=clock)
    token = signer_.sign({"sub": "x"})
    assert kid_of(token) == signer["kid"]
    assert verify(token, signer_.jwks) == {"sub": "x"}
    # every configured key is published whichever signs
    assert [k["kid"] for k in signer_.jwks["keys"]] == [OLD["kid"], NEW["kid"], NEXT["kid"]]
    assert all("d" not in k and k["use"] == "sig" for k in signer_.jwks["keys"])
    assert signer_.algs == ["ES256", "EdDSA"]


def test_the_choice_is_made_at_signing_time() -> None:
    clock = Clock(T1 - 1)
    signer = Signer(SCHEDULE, clock=clock)
    with capture_logs() as logs:
        assert kid_of(signer.sign({})) == OLD["kid"]
        clock.now = T1  # no restart, no reload
        key = signer.active()
        assert key.kid == NEW["kid"] and key.alg == "EdDSA"
        assert kid_of(key.sign({})) == NEW["kid"]
    assert [e["event"] for e in logs] == ["signing_key_changed"]
    assert logs[0]["kid"] == NEW["kid"] and logs[0]["previous"] == OLD["kid"]
    # at_hash follows the signing key's alg: Ed25519 hashes with SHA-512
    digest = hashlib.sha512(b"a2a_at_x").digest()
    assert key.half_hash("a2a_at_x") == b64(digest[:32])


def test_without_dates_the_first_key_signs() -> None:
    signer = Signer((SigningKey(NEW), SigningKey(OLD)))
    assert kid_of(signer.sign({})) == NEW["kid"]
    assert len(signer.jwks["keys"]) == 2


def test_no_key_due_is_an_error_not_a_token() -> None:
    signer = Signer((SigningKey(OLD, not_before=T1, not_after=T2),), clock=Clock(T2))
    with pytest.raises(NoSigningKey, match="no signing key may sign at"):
        signer.sign({})


# -- status: published, signing, removable -------------------------------------------


def test_status_and_removable_after() -> None:
    lifetimes = Lifetimes(id_token=300, access_token=900)
    assert retention(lifetimes) == 900 + CLOCK_LEEWAY
    old, new, nxt = key_status(SCHEDULE, lifetimes, T1 + 10)
    # OLD stopped signing when NEW became due (T1), before its own not_after
    assert (old.signing, old.signs and old.signs.end) == (False, T1)
    assert old.removable_after == T1 + 900 + CLOCK_LEEWAY
    assert not old.removable(T1 + 960 - 1) and old.removable(T1 + 960)
    assert new.signing and new.signs is not None and (new.signs.start, new.signs.end) == (T1, T3)
    assert new.removable_after == T3 + 960  # NEXT takes over for good at T3
    assert not nxt.signing and nxt.signs is not None and nxt.signs.start == T3
    assert nxt.removable_after is None  # it signs with no end
    assert [s.key for s in timeline(SCHEDULE)] == [SCHEDULE[0], SCHEDULE[1], SCHEDULE[2]]


def test_startup_logs_what_signs_and_what_may_go() -> None:
    lifetimes = Lifetimes()
    now = T1 + retention(lifetimes)
    with capture_logs() as logs:
        Signer(SCHEDULE, clock=Clock(now), lifetimes=lifetimes)
    by_event = {e["event"]: e for e in logs}
    assert by_event["signing_key_active"]["kid"] == NEW["kid"]
    assert by_event["signing_key_pending"]["signs_from"] == iso(T3)
    removable = by_event["signing_key_removable"]
    assert removable["log_level"] == "warning"
    assert (removable["kid"], removable["file"]) == (OLD["kid"], "keys/old.jwk")
    with capture_logs() as logs:
        Signer(SCHEDULE, clock=Clock(now - 1), lifetimes=lifetimes)
    assert "signing_key_removable" not in {e["event"] for e in logs}


# -- the CLI ---------------------------------------------------------------------

CONFIG = """
issuer: https://login.merchant.example
store: {{url: "memory://"}}
keys:
  signing:
{entries}
  token_encryption: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
lifetimes: {{id_token: 300, access_token: 600}}
subject: {{type: bank}}
banks:
  - {{id: bank-a, acr_values: [urn:a], kind: oidc, issuer: https://bank-a.example,
      client_id: merchant, client_auth: client_secret_basic, client_secret: s}}
clients:
  - {{client_id: app, type: public, redirect_uris: [https://app.example/cb]}}
"""


def write_config(folder: Path, entries: str) -> Path:
    keys = folder / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    for name, key in (("old", OLD), ("new", NEW), ("next", NEXT)):
        (keys / f"{name}.jwk").write_text(key.export(private_key=True))
    path = folder / "config.yaml"
    path.write_text(CONFIG.format(entries=entries))
    return path


def test_keys_status(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_config(tmp_path, """\
    - {file: keys/old.jwk, not_after: 2000-01-01T00:00:00Z}
    - {file: keys/new.jwk, not_before: 2000-01-01T00:00:00Z}
    - {file: keys/next.jwk, not_before: "2999-01-01T00:00:00+00:00"}""")
    assert main(["keys", "status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "3 signing key(s)" in out
    *blocks, token_block = out.split("\n\n")[1:]
    old, new, nxt = ({k: v for k, _, v in (line.strip(" -").partition(": ")
                                           for line in block.strip().splitlines())}
                     for block in blocks)
    assert old == {
        "file": "keys/old.jwk", "kid": OLD["kid"], "alg": "ES256", "published": "yes",
        "signing now": "no", "signs from": "the start",
        "signs until": old["signs until"], "removable after": old["removable after"],
    }
    assert old["signs until"].startswith("2000-01-01T00:00:00Z (")
    # not_after + max(id_token, access_token) + leeway = 600 + 60 s later, long gone
    assert old["removable after"].startswith("2000-01-01T00:11:00Z (")
    assert old["removable after"].endswith(": remove it from keys.signing now")
    assert (new["kid"], new["alg"], new["signing now"]) == (NEW["kid"], "EdDSA", "yes")
    assert new["signs until"].startswith("2999-01-01T00:00:00Z (in ")
    assert new["removable after"].startswith("2999-01-01T00:11:00Z (in ")
    assert (nxt["signing now"], nxt["published"]) == ("no", "yes")
    assert nxt["signs from"].startswith("2999-01-01T00:00:00Z (in ")
    assert nxt["removable after"].startswith("- ")
    # the token encryption keys by id: the one that encrypts, then any that only decrypt
    assert token_block.splitlines() == [
        "keys.token_encryption: 1 key(s); the first encrypts, all decrypt",
        f"- kid: {token_key_id(bytes(32))}", "  encrypts: yes"]


def test_keys_status_of_a_bad_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_config(tmp_path, "    - {file: keys/old.jwk, not_before: 2999-01-01T00:00:00Z}")
    assert main(["keys", "status", "--config", str(config)]) == 2
    assert "keys.signing: no key can sign now" in capsys.readouterr().err


def test_keys_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_config(tmp_path, "    - file: keys/old.jwk")
    before = time.time()
    assert main(["keys", "plan", "--config", str(config), "--new",
                 str(tmp_path / "keys/next.jwk"), "--activate-in", "3600"]) == 0
    out = capsys.readouterr().out
    assert config.read_text() == CONFIG.format(entries="    - file: keys/old.jwk")  # untouched
    # the printed entries are YAML to paste under keys.signing
    entries = yaml.safe_load("\n".join(line for line in out.splitlines()
                                       if not line.startswith("#")))
    new, old = entries
    assert new["file"] == "keys/next.jwk" and old["file"] == "keys/old.jwk"
    starts = new["not_before"].timestamp()
    assert before + 3600 <= starts <= time.time() + 3600 + 60 and starts % 60 == 0
    assert old == {"file": "keys/old.jwk", "not_after": new["not_before"]}  # one moment
    assert f"# kid {NEXT['kid']}, ES256" in out
    removable = re.search(r"entry after (\S+) \(not_after \+ 660 s\)", out)
    assert removable and removable.group(1) == iso(starts + 660)
    assert "SIGHUP" in out and f"keys status --config {config}" in out
    # pasted in, the config loads and the new key is due at not_before
    config.write_text(CONFIG.format(entries="\n".join(
        line for line in out.splitlines() if not line.startswith("#"))))
    assert main(["keys", "status", "--config", str(config)]) == 0
    assert "signing now: no" in capsys.readouterr().out.split("\n\n")[1]


def test_keys_plan_refuses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = write_config(tmp_path, "    - file: keys/old.jwk")
    assert main(["keys", "plan", "--config", str(config), "--new",
                 str(tmp_path / "keys/old.jwk")]) == 2
    assert "is already in keys.signing" in capsys.readouterr().err
    (tmp_path / "public.jwk").write_text(json.dumps(NEW.export(private_key=False,
                                                               as_dict=True)))
    assert main(["keys", "plan", "--config", str(config), "--new",
                 str(tmp_path / "public.jwk")]) == 2
    assert "a private key is needed" in capsys.readouterr().err
    assert main(["keys", "plan", "--config", str(config), "--new",
                 str(tmp_path / "keys/new.jwk"), "--activate-in", "60"]) == 0
    assert "warning: --activate-in 60 is less than" in capsys.readouterr().err


# -- a whole login across an activation ------------------------------------------------


async def test_id_token_verifies_with_jwks_across_activation(world_factory: WorldFactory) -> None:
    world = await world_factory()
    config = world.proxy.config
    (old,) = config.keys.signing
    due = int(time.time()) + 2
    keys = Keys(signing=(dataclasses.replace(old, not_after=due), SigningKey(NEW, not_before=due)),
                token_encryption=config.keys.token_encryption)
    rotating = dataclasses.replace(config, keys=keys)
    port = free_port()
    await world.stack.enter_async_context(run_proxy(rotating, port))
    other = Proxy(f"http://127.0.0.1:{port}", rotating, world.proxy.http)

    async def id_token() -> tuple[str, dict[str, Any]]:
        resp = await other.exchange(await world.proxy.login())
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        jwks = await (await other.http.get(f"{other.issuer}/jwks")).json()
        assert [k["kid"] for k in jwks["keys"]] == [old.kid, NEW["kid"]]  # both, all along
        claims = verify(body["id_token"], jwks)
        assert claims["aud"] == PUBLIC and claims["iss"] == world.proxy.issuer
        return kid_of(body["id_token"]), claims

    kid, claims = await id_token()
    assert claims["iat"] < due, "the first login took too long"
    assert kid == old.kid
    await asyncio.sleep(due - time.time() + 0.05)
    kid, claims = await id_token()
    assert kid == NEW["kid"]  # it signs from not_before, without a restart
    meta = await (await other.http.get(f"{other.issuer}/.well-known/openid-configuration")).json()
    assert meta["id_token_signing_alg_values_supported"] == ["ES256", "EdDSA"]
