"""The benchmark suite: each proxy figure beside its ceiling, same run, same machine.

    .venv/bin/python -m benchmarks [--duration 10] [--quick] [--json FILE]

See docs/performance.md for what each run does and the figures of the last full run.
Everything runs on loopback: a private redis-server on a free port (deleted with its
data at the end), the proxy as a real ``app2app-proxy serve`` subprocess, the bare
ceiling apps (:mod:`benchmarks.bare`) and wrk, each pinned with taskset.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
import jwt
import orjson
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from benchmarks import fixtures as fx
from benchmarks import peer as peers
from benchmarks.wrk import WrkResult, run_wrk, write_script
from proxy.model.records import AccessToken, Code, Grant, RefreshToken, RotatedPair, Transaction
from proxy.model.tokens import ACCESS_TOKEN, grant_of
from proxy.store.keys import record_key

# Two cores: the server under test on one, wrk, Redis and this process on the other.
SERVER_CPU = "0"
LOAD_CPU = "1"
BOTH_CPUS = "0,1"
# codes minted per second of a run: above either side's rate on this machine (a list that
# wraps sends used codes: replays, answered 400, and the table says so)
CODES_PER_SECOND = {"proxy": 6000, "bare": 6000}
# refresh tokens likewise (a refresh costs more than a code exchange)
REFRESHES_PER_SECOND = 4000
SETTLE_SECONDS = 20  # after the scale case's bulk load, before it is measured
SMALL_DB = 1  # the scale case's 10 thousand tokens alone (database 0 holds the millions)
# what --only may name: introspection for a resource server without the bank token (and
# paced: p99 at half peak), with it (bank), of a DPoP-bound token (dpop), as an RFC 9701
# JWT (jwt); /userinfo; the code exchange (token); the refresh grant (refresh); ...
RUNS = ("introspect", "bank", "dpop", "jwt", "userinfo", "token", "refresh", "authorize",
        "workers", "login", "scale", "traced")
# the runs in which the peer (node oidc-provider) takes its turn
PEER_RUNS = ("introspect", "bank")
# a DPoP key's thumbprint (RFC 7638: base64url SHA-256) the DPoP-bound tokens are bound to
DPOP_JKT = fx.b64(b"benchmark-dpop-key-thumbprint-32")


@dataclass
class Side:
    """One side of a compared run: where wrk sends, what, and how."""

    url: str
    lines: list[Path]  # one file per round (single-use lines: a fresh list each)
    method: str = "POST"
    headers: dict[str, str] | None = None


class Suite:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.duration: float = args.duration
        self.connections: int = args.connections
        self.results: dict[str, Any] = {}
        self.script = write_script(folder)
        self.pace_ms = 0  # the wrk delay() that gives about half the proxy's peak
        self.only: set[str] = set(args.only.split(",")) if args.only else set(RUNS)
        self.rounds: int = args.rounds

    def wants(self, run: str) -> bool:
        return run in self.only

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def lines(self, name: str, lines: list[str]) -> Path:
        path = self.folder / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        return path

    async def wrk(self, label: str, url: str, lines: Path, *, method: str,
                  headers: dict[str, str] | None = None, pace_ms: int = 0,
                  connections: int | None = None, single_use: bool = False
                  ) -> WrkResult:  # fmt: skip
        """``single_use``: each line may be sent once (codes); otherwise wrk cycles."""
        result = await run_wrk(url, lines, self.script, method=method, duration=self.duration,
                               connections=connections or self.connections, headers=headers,
                               pace_ms=pace_ms, cpus=LOAD_CPU)
        if not single_use:
            result.wrapped = 0
        self.say(f"  {label:<44} {result.rps:9.1f} req/s  p50 {result.p50_ms:7.2f} ms  "
                 f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
                 + (f"  (list wrapped {result.wrapped}x)" if result.wrapped else ""))
        self.results[label] = result.to_json()
        return result

    async def paced(self, runs: list[tuple[str, str]], lines: Path) -> None:
        """Introspection paced at ``self.pace_ms`` (wrk's delay()), in rounds that go
        through ``runs`` ((label, url)) in turn. A p99 of one run moves with this machine's
        hiccups by more than the differences to measure: each label's figures are those
        of its run with the median p99, and every round's p99 and req/s are in the JSON."""
        results: dict[str, list[WrkResult]] = {label: [] for label, _ in runs}
        for _ in range(self.rounds):
            for label, url in runs:
                results[label].append(await run_wrk(
                    url, lines, self.script, method="POST", duration=self.duration,
                    connections=self.connections, headers=INTROSPECT_HEADERS,
                    pace_ms=self.pace_ms, cpus=LOAD_CPU))
        for label, done in results.items():
            median = sorted(done, key=lambda x: x.p99_ms)[len(done) // 2]
            median.wrapped = 0
            self.results[label] = {**median.to_json(), "pace_ms": self.pace_ms,
                                   "rounds_p99_ms": [round(x.p99_ms, 2) for x in done],
                                   "rounds_rps": [round(x.rps, 1) for x in done]}
            self.say(f"  {label:<44} {median.rps:9.1f} req/s  p50 {median.p50_ms:7.2f} ms  "
                     f"p99 {median.p99_ms:7.2f} ms (median of "
                     f"{', '.join(f'{x.p99_ms:.2f}' for x in done)})  errors {median.errors}")

    async def compare(self, name: str, sides: dict[str, Side], *, single_use: bool = False
                      ) -> float:  # fmt: skip
        """The proxy and its ceiling (and the peer, where given) in alternating runs (proxy,
        bare, [peer,] proxy, bare, ...): a shared machine drifts by more than the
        differences to measure, so each ratio is taken between neighbouring runs, and the
        median of the rounds is reported: ``{name} ratio`` (to the bare app) and ``{name}
        ratio to {side}`` (to any other). Each side's figures are its median run's.
        Returns the proxy's median req/s."""
        runs: dict[str, list[WrkResult]] = {side: [] for side in sides}
        for n in range(self.rounds):
            for side, target in sides.items():
                runs[side].append(await run_wrk(
                    target.url, target.lines[n % len(target.lines)], self.script,
                    method=target.method, duration=self.duration,
                    connections=self.connections, headers=target.headers, cpus=LOAD_CPU))
            self.say(f"  {name} round {n + 1}: " + ", ".join(
                f"{side} {done[-1].rps:9.1f} req/s" for side, done in runs.items()))
        for side, results in runs.items():
            median = sorted(results, key=lambda x: x.rps)[len(results) // 2]
            if not single_use:
                median.wrapped = 0
            label = f"{name} {side}"
            self.results[label] = {**median.to_json(),
                                   "rounds_rps": [round(x.rps, 1) for x in results]}
            self.say(f"  {label:<44} {median.rps:9.1f} req/s  p50 {median.p50_ms:7.2f} ms  "
                     f"p99 {median.p99_ms:7.2f} ms  errors {median.errors}"
                     + (f"  (list wrapped {median.wrapped}x)" if median.wrapped else ""))
            if side == "proxy":
                continue
            ratios = sorted(p.rps / o.rps for p, o in zip(runs["proxy"], results, strict=True)
                            if o.rps)
            key = f"{name} ratio" if side == "bare" else f"{name} ratio to {side}"
            self.results[key] = round(ratios[len(ratios) // 2], 3) if ratios else 0.0
            self.say(f"  {key:<44} {self.results[key]:9.3f} (median of "
                     f"{', '.join(f'{x:.2f}' for x in ratios)})")
        return sorted(x.rps for x in runs["proxy"])[len(runs["proxy"]) // 2]


def basic(user: str, password: str) -> str:
    return aiohttp.BasicAuth(user, password).encode()


INTROSPECT_HEADERS = {"Authorization": basic(*fx.RS),
                      "Content-Type": "application/x-www-form-urlencoded"}
BANK_HEADERS = {**INTROSPECT_HEADERS, "Authorization": basic(*fx.RS_BANK)}
JWT_HEADERS = {**INTROSPECT_HEADERS, "Accept": "application/token-introspection+jwt"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def authorize_template() -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in {
        "response_type": "code", "client_id": fx.CLIENT, "redirect_uri": fx.APP_REDIRECT,
        "scope": "openid profile offline_access", "code_challenge": fx.CHALLENGE,
        "code_challenge_method": "S256",
    }.items())  # fmt: skip
    return f"/authorize?{query}&state=s{{n}}&nonce=n{{n}}"


def exchange_body(code: str) -> str:
    return (f"grant_type=authorization_code&code={code}&redirect_uri="
            f"{quote(fx.APP_REDIRECT, safe='')}&client_id={fx.CLIENT}"
            f"&code_verifier={fx.VERIFIER}")


def refresh_body(token: str) -> str:
    return f"grant_type=refresh_token&refresh_token={token}&client_id={fx.CLIENT}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="a2a-bench-") as tmp:
        folder = Path(tmp)
        suite = Suite(args, folder)
        async with fx.redis_server(folder, LOAD_CPU) as redis_server:
            port = fx.free_port()
            async with fx.sandbox(port) as bank:
                setup = fx.Setup(folder, port, redis_server.url, bank)
                fx.write_config(setup)
                connector = aiohttp.TCPConnector(limit=64)
                async with aiohttp.ClientSession(connector=connector) as http:
                    minter = fx.Minter(setup, http)
                    try:
                        await phases(suite, setup, redis_server, minter, http)
                    finally:
                        await minter.close()
            redis_server.redis_version = redis_server.version()
        suite.results["machine"] = machine(redis_server)
        suite.results["settings"] = {"duration_s": suite.duration,
                                     "connections": suite.connections,
                                     "scale_tokens": args.scale_tokens}
        return suite.results


async def phases(suite: Suite, setup: fx.Setup, rs: fx.RedisServer, minter: fx.Minter,
                 http: aiohttp.ClientSession) -> None:  # fmt: skip
    client = rs.client()
    log = setup.folder / "servers.log"
    r = suite.results

    # live composite tokens, minted through the real code path; memory per login
    suite.say(f"minting {suite.args.logins} logins through proxy.oauth.grants ...")
    # first a few, uncounted (the scripts are then loaded), and both readings with no
    # client connected but this one: the figure is the records' (and the key tables')
    warm = await minter.logins(64)
    await minter.reconnect()
    before = rs.used_memory()
    tokens = await minter.logins(suite.args.logins)
    await minter.reconnect()
    r["memory_per_login_real_path"] = round((rs.used_memory() - before) / len(tokens))
    tokens += warm
    at_text = client.get(record_key(fx.PREFIX, AccessToken.kind, tokens[0]))
    assert isinstance(at_text, bytes)
    r["composite_token_bytes"] = bare_copies(client, tokens)
    intro_lines = suite.lines("introspect", [f"token={t}" for t in tokens])
    # the other populations: logins whose bank tokens are of a real bank's size (a JWT
    # access token), and logins whose access tokens are DPoP-bound
    count = max(64, suite.args.logins // 2)
    bank_tokens: list[str] = []
    if suite.wants("bank"):
        suite.say(f"minting {count} logins with {sum(fx.JWT_SIZED_BANK_TOKENS)}-character "
                  "bank tokens ...")
        bank_tokens = await minter.logins(count, bank_tokens=fx.JWT_SIZED_BANK_TOKENS)
        r["bank_composite_token_bytes"] = bare_copies(client, bank_tokens)
    sealed_size = bank_plaintext_size(client, minter, bank_tokens or tokens)
    r["bank_tokens_plaintext_bytes"] = sealed_size
    dpop_tokens: list[str] = []
    if suite.wants("dpop"):
        suite.say(f"minting {count} logins with DPoP-bound access tokens ...")
        dpop_tokens = await minter.logins(count, jkt=DPOP_JKT)
        r["dpop_composite_token_bytes"] = bare_copies(client, dpop_tokens)

    # codes and refresh tokens for the proxy (cloned from one real one each) and for the
    # bare app: a fresh list for each round, so none is sent twice
    rounds = suite.rounds
    first_code = await minter.code()
    code_record = fx.read_record(client, Code.kind, first_code)
    exchange: dict[str, list[Path]] = {"proxy": [], "bare": []}
    probes = {"introspect": f"token={tokens[0]}"}
    for side in ("proxy", "bare") if suite.wants("token") else ():
        per_round = int(suite.duration * CODES_PER_SECOND[side])
        for n in range(rounds):
            codes = (fx.clone_codes(client, first_code, per_round) if side == "proxy"
                     else fx.bare_codes(client, code_record, per_round))
            exchange[side].append(suite.lines(f"exchange-{side}-{n}",
                                              [exchange_body(c) for c in codes]))
    # one more code each: the sanity probes'
    probes["token"] = exchange_body(fx.clone_codes(client, first_code, 1)[0])
    probes["bare token"] = exchange_body(fx.bare_codes(client, code_record, 1)[0])
    template_rt = str((await minter.login(0))["refresh_token"])
    rt_record = fx.read_record(client, RefreshToken.kind, template_rt)
    rt_grant = fx.read_record(client, Grant.kind,
                              RefreshToken.of(template_rt, rt_record).grant_id)
    refreshes: dict[str, list[Path]] = {"proxy": [], "bare": []}
    if suite.wants("refresh"):
        per_round = int(suite.duration * REFRESHES_PER_SECOND)
        for n in range(rounds):
            refreshes["proxy"].append(suite.lines(f"refresh-proxy-{n}", [refresh_body(t) for t in
                fx.clone_refresh_tokens(client, template_rt, per_round)]))  # fmt: skip
            refreshes["bare"].append(suite.lines(f"refresh-bare-{n}", [refresh_body(t) for t in
                fx.bare_refresh_tokens(client, rt_grant, rt_record, per_round)]))  # fmt: skip
    authorize_lines = suite.lines("authorize", [authorize_template()])

    issuer = setup.issuer
    bare_port = fx.free_port()
    bare_url = f"http://127.0.0.1:{bare_port}"
    one_worker = fx.proxy_command(setup, workers=1, cpus=fx_cpu(SERVER_CPU),
                                  log_level=suite.args.log_level)
    with_peer = any(suite.wants(run) for run in PEER_RUNS)
    suite.say("proxy (serve --workers 1), the bare ceiling app" + (
        " and the peer (node oidc-provider)" if with_peer else "") + ", all pinned to core 0; "
        f"{rounds} rounds, each runs the proxy then the bare app" + (
        " (then the peer)" if with_peer else ""))
    async with fx.process(one_worker, f"{issuer}/healthz", log), \
            peer_if(with_peer, setup.folder, http, log, setup.redis_url) as peer:
        sizes = await response_sizes(http, issuer, client, at_text, template_rt, sealed_size)
        await sanity(http, issuer, probes["introspect"], probes["token"])
        async with fx.process(fx.bare_command(setup, bare_port, sizes, fx_cpu(SERVER_CPU)),
                              f"{bare_url}/authorize", log):
            await sanity(http, bare_url, probes["introspect"], probes["bare token"])
            if peer is not None:
                r["peer"] = {"name": "node oidc-provider", "version": peer.version,
                             "node": node_version(), "tokens": peers.TOKENS}

            def pair(path: str, bare_path: str, lines: Path, headers: dict[str, str],
                     method: str = "POST") -> dict[str, Side]:  # fmt: skip
                return {"proxy": Side(issuer + path, [lines], method, headers),
                        "bare": Side(bare_url + bare_path, [lines], method, headers)}

            def with_the_peer(sides: dict[str, Side]) -> dict[str, Side]:
                if peer is None:
                    return sides
                return {**sides, "peer": Side(peer.url, [peer.lines], "POST", peer.headers)}

            if suite.wants("introspect") or suite.wants("scale"):
                peak = await suite.compare("introspect", with_the_peer(pair(
                    "/introspect", "/introspect", intro_lines, INTROSPECT_HEADERS)))
                label = "introspect proxy @ half peak"
                await half_peak(suite, f"{issuer}/introspect", intro_lines, peak)
                await suite.paced([(label, f"{issuer}/introspect"),
                                   ("introspect bare @ proxy's half-peak pace",
                                    f"{bare_url}/introspect")], intro_lines)
                suite.results[label].update(
                    target_rps=round(peak / 2, 1),
                    fraction_of_peak=round(suite.results[label]["rps"] / peak, 3))
            if suite.wants("bank"):
                lines = suite.lines("introspect-bank", [f"token={t}" for t in bank_tokens])
                await check(http, f"{issuer}/introspect", f"token={bank_tokens[0]}",
                            BANK_HEADERS, "bank_access_token")
                # and the floors, in the same rounds: aiohttp alone, and aiohttp with one
                # batched GET: what 1.5x the peer asks of the proxy (benchmarks/report.py)
                await suite.compare("introspect bank token", {**with_the_peer(pair(
                    "/introspect", "/introspect/bank", lines, BANK_HEADERS)),
                    "floor": Side(f"{bare_url}/floor", [lines], "POST", BANK_HEADERS),
                    "floor get": Side(f"{bare_url}/floor/get", [lines], "POST", BANK_HEADERS)})
            if suite.wants("dpop"):
                lines = suite.lines("introspect-dpop", [f"token={t}" for t in dpop_tokens])
                await check(http, f"{issuer}/introspect", f"token={dpop_tokens[0]}",
                            INTROSPECT_HEADERS, "cnf")
                await suite.compare("introspect DPoP-bound", pair(
                    "/introspect", "/introspect", lines, INTROSPECT_HEADERS))
            if suite.wants("jwt"):
                await check(http, f"{issuer}/introspect", probes["introspect"], JWT_HEADERS,
                            None)
                await suite.compare("introspect RFC 9701 JWT", pair(
                    "/introspect", "/introspect/jwt", intro_lines, JWT_HEADERS))
            if suite.wants("traced"):
                await traced(suite, setup, intro_lines, log)
            if suite.wants("userinfo"):
                lines = suite.lines("userinfo", tokens)
                await suite.compare("userinfo", pair("/userinfo", "/userinfo", lines, {},
                                                     method="BEARER"))
            if suite.wants("token"):
                await suite.compare("token", {
                    "proxy": Side(f"{issuer}/token", exchange["proxy"], "POST", FORM),
                    "bare": Side(f"{bare_url}/token", exchange["bare"], "POST", FORM)},
                    single_use=True)
            if suite.wants("refresh"):
                await suite.compare("refresh", {
                    "proxy": Side(f"{issuer}/token", refreshes["proxy"], "POST", FORM),
                    "bare": Side(f"{bare_url}/token/refresh", refreshes["bare"], "POST", FORM)},
                    single_use=True)
            if suite.wants("authorize"):
                await suite.compare("authorize", pair("", "", authorize_lines, {},
                                                      method="GET"))
        if suite.wants("login"):
            r["login"] = await logins(suite, http, issuer, setup.bank)

    if suite.wants("workers"):
        await two_workers(suite, setup, intro_lines, bare_port, sizes, log)
    if suite.wants("scale"):
        # a fresh login for the template: the run so far may outlast the first ones' tokens
        await scale(suite, setup, rs, (await minter.logins(1))[0])


@asynccontextmanager
async def peer_if(wanted: bool, folder: Path, http: aiohttp.ClientSession, log: Path,
                  redis_url: str) -> AsyncIterator[peers.Peer | None]:  # fmt: skip
    if not wanted:
        yield None
        return
    async with peers.running(folder, http, fx_cpu(SERVER_CPU), LOAD_CPU, log,
                             redis_url) as peer:
        yield peer


def node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return ""
    done = subprocess.run([node, "--version"],  # noqa: S603 (fixed arguments)
                          capture_output=True, text=True, check=False)
    return done.stdout.strip()


def bare_copies(client: Any, tokens: list[str]) -> int:
    """The bare app's keys for ``tokens`` (the token itself): what the proxy reads to
    introspect the first (its record and its grant's), as one JSON value of the same
    size. Its size."""
    at = client.get(record_key(fx.PREFIX, AccessToken.kind, tokens[0]))
    grant = client.get(record_key(fx.PREFIX, Grant.kind, grant_of(ACCESS_TOKEN, tokens[0]) or ""))
    assert isinstance(at, bytes) and isinstance(grant, bytes)
    composite = json.dumps({"at": json.loads(at), "grant": json.loads(grant)},
                           separators=(",", ":"))
    pipe = client.pipeline(transaction=False)
    for token in tokens:
        pipe.set(f"{fx.PREFIX}bare:at:{token}", composite, ex=3600)
    pipe.execute()
    return len(composite)


def bank_plaintext_size(client: Any, minter: fx.Minter, tokens: list[str]) -> int:
    """The length of the bank tokens sealed in the grant of ``tokens[0]``: the bare app
    decrypts a value of that size."""
    grant = fx.read_record(client, Grant.kind, grant_of(ACCESS_TOKEN, tokens[0]) or "")
    return len(orjson.dumps(minter.svc.cipher.decrypt(grant["bank_tokens"])))


async def check(http: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str],
                member: str | None) -> None:  # fmt: skip
    """One request of a run, checked: active, with ``member`` (None: an RFC 9701 JWT)."""
    async with http.post(url, data=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        if member is None:
            assert resp.content_type == "application/token-introspection+jwt"
            claims = jwt.decode(await resp.text(), options={"verify_signature": False})
            answer = claims["token_introspection"]
            assert answer.get("active") is True, answer
            return
        answer = await resp.json()
        assert answer.get("active") is True and member in answer, answer


async def traced(suite: Suite, setup: fx.Setup, lines: Path, log: Path) -> None:
    """Introspection with OpenTelemetry traces on (docs/observability.md): a second proxy,
    the same but for OTEL_EXPORTER_OTLP_ENDPOINT, exporting OTLP/HTTP to a local sink
    that only counts, in alternating runs beside the untraced one (``traced ratio to
    traced``: untraced req/s over traced)."""
    async with fx.otlp_sink() as sink:
        port = fx.free_port()
        command = [*fx.proxy_command(setup, workers=1, cpus=fx_cpu(SERVER_CPU),
                                     log_level=suite.args.log_level), "--port", str(port)]
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.port}",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
        url = f"http://127.0.0.1:{port}"
        async with fx.process(command, f"{url}/healthz", log, env=env):
            await suite.compare("traced", {
                "proxy": Side(f"{setup.issuer}/introspect", [lines], "POST", INTROSPECT_HEADERS),
                "traced": Side(f"{url}/introspect", [lines], "POST", INTROSPECT_HEADERS)})
        suite.results["traced export"] = {"requests": sink.requests, "bytes": sink.bytes}
        suite.say(f"  traced: {sink.requests} OTLP exports, {sink.bytes} bytes")


async def two_workers(suite: Suite, setup: fx.Setup, intro_lines: Path, bare_port: int,
                      sizes: dict[str, int], log: Path) -> None:  # fmt: skip
    issuer = setup.issuer
    bare_url = f"http://127.0.0.1:{bare_port}"
    suite.say("proxy: serve --workers 2 on both cores (wrk and Redis share core 1)")
    two = fx.proxy_command(setup, workers=2, cpus=fx_cpu(BOTH_CPUS),
                           log_level=suite.args.log_level)
    async with fx.process(two, f"{issuer}/healthz", log):
        await suite.wrk("introspect proxy --workers 2", f"{issuer}/introspect", intro_lines,
                        method="POST", headers=INTROSPECT_HEADERS)
    bare_two = fx.bare_command(setup, bare_port, sizes, fx_cpu(BOTH_CPUS), reuse_port=True)
    async with fx.process(bare_two, f"{bare_url}/authorize", log), \
            fx.process(bare_two, f"{bare_url}/authorize", log):
        await suite.wrk("introspect bare x2", f"{bare_url}/introspect", intro_lines,
                        method="POST", headers=INTROSPECT_HEADERS)


async def sanity(http: aiohttp.ClientSession, base: str, introspect: str, exchange: str
                 ) -> None:  # fmt: skip
    """One request of each kind, checked: a 200 ``active: false`` or a 400 would
    otherwise pass for a fast answer."""
    async with http.post(f"{base}/introspect", data=introspect,
                         headers=INTROSPECT_HEADERS) as resp:
        body = await resp.json()
        assert resp.status == 200 and body.get("active", True) is True, body
    async with http.post(f"{base}/token", data=exchange, headers=FORM) as resp:
        body = await resp.json()
        assert resp.status == 200 and "id_token" in body, body
    async with http.get(base + authorize_template().replace("{n}", "probe"),
                        allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()


def fx_cpu(cpus: str) -> str | None:
    return cpus if len(os.sched_getaffinity(0) | {0, 1}) >= 2 else None


async def response_sizes(http: aiohttp.ClientSession, issuer: str, client: Any,
                         at_text: bytes, refresh_token: str, sealed_size: int
                         ) -> dict[str, int]:  # fmt: skip
    """The sizes the bare app copies: an access token record, a transaction record, the
    proxy's Location toward the bank, a refresh token record, the rotated pair a refresh
    keeps (from one refresh of ``refresh_token``, checked), the sealed bank tokens."""
    async with http.get(issuer + authorize_template().replace("{n}", "size"),
                        allow_redirects=False) as resp:
        location = resp.headers["Location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    txn = client.get(record_key(fx.PREFIX, Transaction.kind, state))
    rt = client.get(record_key(fx.PREFIX, RefreshToken.kind, refresh_token))
    async with http.post(f"{issuer}/token", data=refresh_body(refresh_token),
                         headers=FORM) as resp:
        body = await resp.json()
        assert resp.status == 200 and "refresh_token" in body, body
    pair = client.get(record_key(fx.PREFIX, RotatedPair.kind, refresh_token))
    return {"at": len(at_text), "txn": len(txn or b"x" * 1000), "location": len(location),
            "rt": len(rt or b"x" * 120), "pair": len(pair or b"x" * 2600),
            "bank_tokens": sealed_size}


async def half_peak(suite: Suite, url: str, lines: Path, peak_rps: float) -> None:
    """Plain wrk has no fixed rate: each connection waits ``delay()`` ms after each
    answer. Sets ``suite.pace_ms``: aimed at half the peak, then corrected once for the
    latency a probe run sees."""
    target = peak_rps / 2
    c = suite.connections
    delay = max(1, round(1000 * c / target))
    probe = await run_wrk(url, lines, suite.script, method="POST", duration=min(
        3, suite.duration), connections=c, headers=INTROSPECT_HEADERS, pace_ms=delay,
        cpus=LOAD_CPU)
    # achieved = c / (delay + L): keep L, pick the delay that gives the target
    latency_ms = 1000 * c / max(probe.rps, 1) - delay
    suite.pace_ms = max(1, round(1000 * c / target - latency_ms))


async def timed(samples: list[float], step: Callable[[], Awaitable[None]]) -> None:
    start = time.perf_counter()
    await step()
    samples.append((time.perf_counter() - start) * 1000)


async def logins(suite: Suite, http: aiohttp.ClientSession, issuer: str,
                 bank: Any) -> dict[str, Any]:  # fmt: skip
    """Whole logins, one at a time, for ``duration`` seconds each: through the proxy
    (authorize, bank authorize, callback, token) and straight at the sandbox bank
    (authorize, token) with the same client library."""
    bank_auth = aiohttp.BasicAuth(fx.DIRECT_CLIENT, fx.BANK_SECRET)

    async def via_proxy() -> None:
        url: str = issuer + authorize_template().replace("{n}", os.urandom(6).hex())
        while not url.startswith(fx.APP_REDIRECT):
            async with http.get(url, allow_redirects=False) as resp:
                assert resp.status in (302, 303), (resp.status, await resp.text())
                url = resp.headers["Location"]
        code = parse_qs(urlsplit(url).query)["code"][0]
        async with http.post(f"{issuer}/token", data=exchange_body(code),
                             headers=FORM) as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()

    verifier = "w" * 43
    params = {"response_type": "code", "client_id": fx.DIRECT_CLIENT,
              "redirect_uri": fx.APP_REDIRECT, "scope": "openid profile",
              "code_challenge": create_s256_code_challenge(verifier),
              "code_challenge_method": "S256", "acr_values": "urn:sandbox:loa:high"}

    async def direct() -> None:
        query = {**params, "state": os.urandom(6).hex(), "nonce": os.urandom(6).hex()}
        async with http.get(f"{bank.issuer}/authorize", params=query,
                            allow_redirects=False) as resp:
            assert resp.status == 302, await resp.text()
            code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": fx.APP_REDIRECT, "code_verifier": verifier}
        async with http.post(bank.token_endpoint, data=form, auth=bank_auth) as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()

    figures: dict[str, Any] = {}
    for name, step in (("direct", direct), ("proxy", via_proxy)):
        for _ in range(20):  # warm: connections, bank metadata and JWKS
            await step()
        samples: list[float] = []
        end = time.monotonic() + suite.duration
        while time.monotonic() < end and len(samples) < 5000:
            await timed(samples, step)
            if len(bank.requests) > 1000:
                bank.requests.clear()
        samples.sort()
        figures[name] = {"logins": len(samples), "p50_ms": round(pct(samples, 50), 2),
                         "p99_ms": round(pct(samples, 99), 2),
                         "mean_ms": round(statistics.fmean(samples), 2)}
        suite.say(f"  login {name:<38} {len(samples):6d} logins  p50 "
                  f"{figures[name]['p50_ms']:7.2f} ms  p99 {figures[name]['p99_ms']:7.2f} ms")
    figures["added_p50_ms"] = round(figures["proxy"]["p50_ms"] - figures["direct"]["p50_ms"], 2)
    figures["added_p99_ms"] = round(figures["proxy"]["p99_ms"] - figures["direct"]["p99_ms"], 2)
    return figures


def pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q / 100 * len(sorted_ms)))]


async def scale(suite: Suite, setup: fx.Setup, rs: fx.RedisServer, template_token: str
                ) -> None:  # fmt: skip
    """Introspection of the same 10 thousand live tokens among 10 thousand and among
    ``scale_tokens``: two databases of the run's redis-server, each served by its own
    proxy, the paced rounds alternating between them. A machine that drifts by more, from
    one minute to the next, than the difference to measure would otherwise decide it:
    measured one block after the other, minutes apart, the same code gave 0.72x to 1.61x."""
    client = rs.client()
    templates = fx.Templates.of(client, template_token)
    ttl = 3600
    small = 10_000
    big = suite.args.scale_tokens
    sample = fx.clone_sample(client, templates, small, ttl)
    fx.copy_sample(client, sample, SMALL_DB)
    lines = suite.lines("scale", [f"token={t}" for t in sample])
    suite.say(f"scale: the same {small} live tokens in database {SMALL_DB} alone and in "
              f"database 0 among {big}: loading {big - small} more logins "
              "(grant + access + refresh) ...")
    # the keys already in the database: their part of the key tables (a slot per key in
    # the keys' and in the expiries' table, grown by doubling) was there before the load
    # and is not in the figure; the more of them, the lower it reads
    before, keys_before = rs.used_memory(), int(client.dbsize())
    start = time.perf_counter()
    fx.clone_population(client, templates, big - small, ttl)
    loaded = time.perf_counter() - start
    per_login = (rs.used_memory() - before) / (big - small)
    suite.results["memory_per_login_cloned"] = round(per_login)
    suite.results["keys_before_load"] = keys_before
    suite.results["scale_load_seconds"] = round(loaded, 1)
    suite.results["redis_keys"] = int(client.dbsize())
    suite.say(f"  {client.dbsize()} keys, {per_login:.0f} bytes per login ({keys_before} "
              f"keys in the database before the load), loaded in {loaded:.1f} s")
    small_port = fx.free_port()
    small_issuer = f"http://127.0.0.1:{small_port}"
    cpus = fx_cpu(SERVER_CPU)
    many = fx.proxy_command(setup, workers=1, cpus=cpus, log_level=suite.args.log_level)
    few = fx.proxy_command(setup, workers=1, cpus=cpus, log_level=suite.args.log_level,
                           config=fx.config_on_db(setup, SMALL_DB), port=small_port)
    log = setup.folder / "servers.log"
    async with fx.process(many, f"{setup.issuer}/healthz", log), \
            fx.process(few, f"{small_issuer}/healthz", log):
        targets = [(f"introspect {small // 1000}k tokens", f"{small_issuer}/introspect"),
                   (f"introspect {big // 1000}k tokens", f"{setup.issuer}/introspect")]
        async with aiohttp.ClientSession() as http:
            for _, url in targets:
                async with http.post(url, data=f"token={sample[0]}",
                                     headers=INTROSPECT_HEADERS) as resp:
                    assert (await resp.json())["active"] is True, "a cloned token is not active"
        # Right after a bulk load of millions of keys the first runs are slower (on this
        # machine: p99 6.6-6.8 ms right after, 3.9-5.9 ms 20 s later, 4.9-5.6 ms at 10
        # thousand; Redis rehashes its grown key table step by step, the likely cause).
        # A store reaching millions of tokens grows over hours, not in a minute: the
        # population is measured once settled, after an unmeasured warm-up of each proxy.
        suite.say(f"  settling for {SETTLE_SECONDS} s, then a warm-up run of each proxy")
        await asyncio.sleep(SETTLE_SECONDS)
        for _, url in targets:
            await run_wrk(url, lines, suite.script, method="POST", duration=3,
                          connections=suite.connections, headers=INTROSPECT_HEADERS,
                          cpus=LOAD_CPU)
        for label, url in targets:
            await suite.wrk(label, url, lines, method="POST", headers=INTROSPECT_HEADERS)
        await suite.paced([(f"{label} @ half peak", url) for label, url in targets], lines)
    # the private redis-server goes with all of it when the run ends


def machine(rs: fx.RedisServer) -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model(),
            "python": platform.python_version(), "redis": rs.redis_version,
            "kernel": platform.release()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
