"""What the runs need: a private redis-server, a config file, the proxy and the bare
app as pinned subprocesses, the sandbox bank, and tokens and codes in Redis, minted
through the proxy's own code paths (:mod:`proxy.oauth.grants`) or cloned from such records."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from federation.protocol import BankResult, BankTokens, Identity
from federation.sandbox import SandboxBank, SandboxClient, serve_sandbox
from proxy.app import build_state
from proxy.config import load_config
from proxy.model.records import AccessToken, Code, Grant, RefreshToken, Transaction
from proxy.model.tokens import (
    ACCESS_TOKEN,
    AUTHORIZATION_CODE,
    REFRESH_TOKEN,
    grant_of,
    new_grant_id,
    new_grant_value,
    new_value,
)
from proxy.oauth.grants import exchange_code, issue_code
from proxy.oauth.services import Services
from proxy.ops.keys import generate_signing_key
from proxy.store import open_store
from proxy.store.keys import record_key
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
APP_REDIRECT = "https://app.merchant.example/auth/callback"
ACR = "urn:merchant:acr:bank-a"
CLIENT = "merchant-ios"
RS = ("orders-api", "orders-secret-" + "y" * 20)
# a resource server that also receives the bank access token (receive_bank_token: true)
RS_BANK = ("payments-api", "payments-secret-" + "b" * 20)
# a bank access token of a JWT's size (about 1 KB) and a refresh token: a 1.4 KB set, as
# real banks issue, for the runs that open the bank tokens (the population of the other
# runs, and so the memory figures, keep the sandbox bank's 43-character tokens)
JWT_SIZED_BANK_TOKENS = (1000, 300)
BANK_CLIENT = "merchant-at-bank"
BANK_SECRET = "bank-secret-" + "s" * 20
DIRECT_CLIENT = "direct-app"  # the merchant app logging in at the bank without the proxy
PREFIX = "a2a:"  # the default store.prefix (its own redis-server: nothing shared)
# one verifier for every minted code: the challenge is all the record keeps
VERIFIER = "v" * 43
CHALLENGE = create_s256_code_challenge(VERIFIER)


def pinned(command: list[str], cpus: str | None) -> list[str]:
    if cpus is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", cpus, *command]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- Redis ----------------------------------------------------------------------------

@dataclass
class RedisServer:
    url: str
    process: subprocess.Popen[bytes] | None
    redis_version: str = ""

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def used_memory(self) -> int:
        return int(self.client().info("memory")["used_memory"])

    def version(self) -> str:
        return str(self.client().info("server")["redis_version"])


def install(package: str) -> None:
    """``apt-get install`` of a Debian package, said aloud; or fail with the command."""
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        raise SystemExit(f"{package} is needed for the benchmarks: apt-get install -y {package}")
    print(f"{package} is missing: installing it (apt-get install -y {package})", file=sys.stderr)
    subprocess.run([apt, "update", "-qq"], check=False)  # noqa: S603 (fixed arguments)
    subprocess.run([apt, "install", "-y", "-qq", package], check=True)  # noqa: S603


def start_redis(folder: Path, port: int, cpus: str | None) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        install("redis-server")
        binary = shutil.which("redis-server")
        assert binary is not None
    return subprocess.Popen(  # noqa: S603 (our own arguments)
        pinned([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(folder), "--protected-mode", "yes"], cpus),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


@asynccontextmanager
async def redis_server(folder: Path, cpus: str | None) -> AsyncIterator[RedisServer]:
    """Our own redis-server on a free port (nothing shared with the tests' Redis), no
    persistence; stopped, and so emptied, at the end."""
    port = free_port()
    process = start_redis(folder, port, cpus)
    server = RedisServer(f"redis://127.0.0.1:{port}/0", process)
    try:
        for _ in range(200):
            try:
                server.client().ping()
                break
            except redis.ConnectionError:
                await asyncio.sleep(0.05)
        yield server
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)


# --- config and processes ---------------------------------------------------------------

@dataclass
class Setup:
    folder: Path
    port: int
    redis_url: str
    bank: SandboxBank

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def key_pem(self) -> Path:
        return self.folder / "keys" / "signing.pem"


# lifetimes (seconds) of what the runs use: longer than a whole run, the bank's tokens
# longer still, so that a refresh never goes to the bank (it does when the bank's access
# token would expire before the new access token)
ACCESS_TOKEN_LIFETIME = 3 * 3600
BANK_TOKEN_LIFETIME = 2 * ACCESS_TOKEN_LIFETIME


def write_config(setup: Setup) -> None:
    """config.yaml for ``serve``: one sandbox bank, one public client, one resource
    server; no rate limits (a limit would measure the limiter)."""
    keys = setup.folder / "keys"
    keys.mkdir(exist_ok=True)
    key = generate_signing_key("ES256")
    (keys / "signing.jwk").write_text(key.export(private_key=True))
    setup.key_pem.write_bytes(key.export_to_pem(private_key=True, password=None))
    setup.config_path.write_text(f"""
issuer: {setup.issuer}
listen: {{host: 127.0.0.1, port: {setup.port}}}
store: {{url: "{setup.redis_url}", prefix: "{PREFIX}"}}
keys:
  signing: [{{file: keys/signing.jwk}}]
  token_encryption: {b64(secrets.token_bytes(32))}
subject: {{type: pairwise, salt: bench-salt}}
# the tokens minted at the start must outlive the run (the default 300 s did not: the
# later runs measured fast "active: false" answers and 401s); the bank's outlive them
lifetimes: {{access_token: {ACCESS_TOKEN_LIFETIME}}}
banks:
  - id: bank-a
    acr_values: [{ACR}]
    upstream_acr_values: [urn:sandbox:loa:high]
    kind: oidc
    issuer: {setup.bank.issuer}
    timeout: 5
    client_id: {BANK_CLIENT}
    client_auth: client_secret_basic
    client_secret: {BANK_SECRET}
    scopes: [openid, profile]
    authentication_level: sca
    claims: {{name: name, given_name: given_name, family_name: family_name}}
clients:
  - client_id: {CLIENT}
    type: public
    redirect_uris: [{APP_REDIRECT}]
    default_acr: {ACR}
    scopes: [openid, profile, offline_access]
resource_servers:
  - client_id: {RS[0]}
    client_secret: {RS[1]}
    receive_bank_token: false
  - client_id: {RS_BANK[0]}
    client_secret: {RS_BANK[1]}
    receive_bank_token: true
""")


@asynccontextmanager
async def sandbox(port_of_proxy: int) -> AsyncIterator[SandboxBank]:
    """The sandbox bank (auto-approve) in this process, knowing the proxy and a direct
    client."""
    issuer = f"http://127.0.0.1:{port_of_proxy}"
    bank = SandboxBank(clients=[
        SandboxClient(BANK_CLIENT, [f"{issuer}/callback/bank-a"], "client_secret_basic",
                      secret=BANK_SECRET),
        SandboxClient(DIRECT_CLIENT, [APP_REDIRECT], "client_secret_basic", secret=BANK_SECRET),
    ])  # fmt: skip
    async with serve_sandbox(bank):
        yield bank


@dataclass
class OtlpSink:
    """What a local OTLP/HTTP collector received: export requests and their bytes."""

    port: int
    requests: int = 0
    bytes: int = 0


@asynccontextmanager
async def otlp_sink() -> AsyncIterator[OtlpSink]:
    """A collector's traces endpoint in this process that keeps nothing but counts: the
    cheapest place a traced proxy can export to (POST /v1/traces, answered empty)."""
    sink = OtlpSink(free_port())

    async def traces(request: web.Request) -> web.Response:
        sink.requests += 1
        sink.bytes += len(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sink.port).start()
    try:
        yield sink
    finally:
        await runner.cleanup()


@asynccontextmanager
async def process(command: list[str], url: str, log: Path,
                  env: dict[str, str] | None = None) -> AsyncIterator[None]:  # fmt: skip
    """A server subprocess, ready once ``url`` answers; killed (with its children: the
    workers of ``serve --workers``) at the end. ``env``: variables added to ours."""
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, start_new_session=True,
        )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                if proc.returncode is not None:
                    raise RuntimeError(f"{command} exited:\n{tail(log)}")
                try:
                    async with http.get(url, allow_redirects=False) as resp:
                        if resp.status < 500:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"{command} did not start:\n{tail(log)}")
        await asyncio.sleep(0.3)  # every worker of serve --workers up
        yield
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, 15)  # our own process group (start_new_session)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                os.killpg(proc.pid, 9)
                await proc.wait()


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


def proxy_command(setup: Setup, *, workers: int, cpus: str | None, log_level: str,
                  config: Path | None = None, port: int | None = None) -> list[str]:
    """``config``, ``port``: another config file than the setup's, another port than its."""
    return pinned([sys.executable, "-m", "proxy", "serve",
                   "--config", str(config or setup.config_path),
                   *(["--port", str(port)] if port is not None else []),
                   "--workers", str(workers), "--log-level", log_level,
                   "--drain-delay", "0", "--shutdown-timeout", "1"], cpus)


def config_on_db(setup: Setup, db: int) -> Path:
    """A copy of the setup's config.yaml (same keys, clients, banks) whose store is
    database ``db`` of the same redis-server; beside it, so its relative key files hold."""
    url = setup.redis_url.rsplit("/", 1)[0] + f"/{db}"
    text = setup.config_path.read_text()
    assert f'url: "{setup.redis_url}"' in text
    path = setup.folder / f"config-db{db}.yaml"
    path.write_text(text.replace(f'url: "{setup.redis_url}"', f'url: "{url}"'))
    return path


def bare_command(setup: Setup, port: int, sizes: dict[str, int], cpus: str | None,
                 reuse_port: bool = False) -> list[str]:  # fmt: skip
    return pinned([sys.executable, "-m", "benchmarks.bare", "--port", str(port),
                   "--redis", setup.redis_url, "--prefix", PREFIX + "bare:",
                   "--key-pem", str(setup.key_pem), "--sizes", json.dumps(sizes),
                   *(["--reuse-port"] if reuse_port else [])], cpus)


# --- records ----------------------------------------------------------------------------

class Minter:
    """The proxy's own Services on the config file: grants, codes and tokens written by
    :func:`proxy.oauth.grants.issue_code` and :func:`proxy.oauth.grants.exchange_code`."""

    def __init__(self, setup: Setup, http: aiohttp.ClientSession) -> None:
        self.config = load_config(setup.config_path)
        self.http = http
        self.store = open_store(self.config.store)
        self.svc = Services(build_state(self.config, store=self.store, http=http),
                            store=self.store, http=http)

    async def close(self) -> None:
        await self.store.close()

    async def reconnect(self) -> None:
        """Close the store's connections and open new ones as needed: Redis frees each
        closed connection's buffers, which would otherwise count in its memory."""
        await self.store.close()
        await asyncio.sleep(0.2)  # Redis has seen the connections close
        self.store = open_store(self.config.store)
        self.svc = Services(self.svc.current, store=self.store, http=self.http)

    def _txn(self) -> Transaction:
        return Transaction(
            client_id=CLIENT, redirect_uri=APP_REDIRECT, state=secrets.token_urlsafe(16),
            nonce=secrets.token_urlsafe(16), code_challenge=CHALLENGE,
            scope=("openid", "profile", "offline_access"), acr=ACR, bank_id="bank-a",
            conn_data={},
        )

    def _result(self, n: int, bank_tokens: tuple[int, int] | None = None) -> BankResult:
        """What the sandbox bank's login gives: its user's claims, opaque tokens (of the
        sandbox's size, or ``bank_tokens``: the access and refresh token's lengths). They
        expire after the runs, so a refresh does not go to the bank."""
        now = int(time.time())
        at_len, rt_len = bank_tokens or (43, 43)
        return BankResult(
            Identity(sub=f"sandbox-user-{n}-{secrets.token_hex(4)}",
                     claims={"name": "Alice Sandbox", "given_name": "Alice",
                             "family_name": "Sandbox"},
                     acr="urn:sandbox:loa:high", amr=("pwd",), auth_time=now),
            BankTokens(access_token=secrets.token_urlsafe(at_len)[:at_len],
                       expires_at=now + BANK_TOKEN_LIFETIME,
                       refresh_token=secrets.token_urlsafe(rt_len)[:rt_len],
                       scope="openid profile"),
        )

    async def code(self, n: int = 0, bank_tokens: tuple[int, int] | None = None) -> str:
        return await issue_code(self.svc, self._txn(), self._result(n, bank_tokens))

    async def login(self, n: int = 0, *, jkt: str | None = None,
                    bank_tokens: tuple[int, int] | None = None) -> dict[str, Any]:
        """A whole login's records (grant, code marker, access and refresh
        token); the token response. ``jkt``: DPoP-bound to a key of that thumbprint."""
        code = await self.code(n, bank_tokens)
        client = self.svc.clients.get(CLIENT)
        assert client is not None
        return await exchange_code(self.svc, client, {
            "grant_type": "authorization_code", "code": code, "redirect_uri": APP_REDIRECT,
            "client_id": CLIENT, "code_verifier": VERIFIER,
        }, jkt=jkt)

    async def logins(self, count: int, concurrency: int = 32, *, jkt: str | None = None,
                     bank_tokens: tuple[int, int] | None = None) -> list[str]:
        """``count`` logins (:meth:`login`); their access tokens."""
        todo = iter(range(count))
        tokens: list[str] = []

        async def worker() -> None:
            for n in todo:
                body = await self.login(n, jkt=jkt, bank_tokens=bank_tokens)
                tokens.append(str(body["access_token"]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return tokens


def read_record(client: redis.Redis, kind: str, id: str) -> dict[str, Any]:
    raw = client.get(record_key(PREFIX, kind, id))
    assert raw is not None, (kind, id)
    value: dict[str, Any] = json.loads(raw)
    return value


def clone_codes(client: redis.Redis, code: str, count: int) -> list[str]:
    """``count`` codes, each with its own grant: copies of the records ``issue_code``
    wrote for ``code`` with new ids, set by a pipeline."""
    record = read_record(client, Code.kind, code)
    grant = read_record(client, Grant.kind, record["grant_id"])
    grant_ttl = int(client.ttl(record_key(PREFIX, Grant.kind, record["grant_id"])))
    codes = []
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        grant_id = new_grant_id()
        new_code = new_grant_value(AUTHORIZATION_CODE, grant_id)
        pipe.set(record_key(PREFIX, Grant.kind, grant_id),
                 json.dumps({**grant, "grant_id": grant_id}, separators=(",", ":")),
                 ex=grant_ttl)
        pipe.set(record_key(PREFIX, Code.kind, new_code),
                 json.dumps({**record, "grant_id": grant_id}, separators=(",", ":")), ex=600)
        codes.append(new_code)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return codes


def clone_refresh_tokens(client: redis.Redis, refresh_token: str, count: int) -> list[str]:
    """``count`` refresh tokens, each with its own grant: copies of the records a login
    wrote for ``refresh_token`` with new ids, set by a pipeline."""
    record = read_record(client, RefreshToken.kind, refresh_token)
    template = RefreshToken.of(refresh_token, record)
    grant = read_record(client, Grant.kind, template.grant_id)
    ttl = int(client.ttl(record_key(PREFIX, Grant.kind, template.grant_id)))
    tokens = []
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        grant_id = new_grant_id()
        token = new_grant_value(REFRESH_TOKEN, grant_id)  # it names its grant
        pipe.set(record_key(PREFIX, Grant.kind, grant_id),
                 json.dumps({**grant, "grant_id": grant_id}, separators=(",", ":")), ex=ttl)
        pipe.set(record_key(PREFIX, RefreshToken.kind, token), json.dumps(
            dataclasses.replace(template, grant_id=grant_id).stored(token),
            separators=(",", ":")), ex=ttl)
        tokens.append(token)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return tokens


def bare_refresh_tokens(client: redis.Redis, grant: dict[str, Any], record: dict[str, Any],
                        count: int) -> list[str]:  # fmt: skip
    """Refresh tokens for the bare app: its key is the token itself, its value a refresh
    token record naming one grant (a copy of a real one) under the bare app's key."""
    grant_id = str(grant["grant_id"])
    client.set(f"{PREFIX}bare:grant:{grant_id}", json.dumps(grant, separators=(",", ":")),
               ex=3600)
    text = json.dumps({**record, "grant_id": grant_id}, separators=(",", ":"))
    tokens = [new_value(REFRESH_TOKEN) for _ in range(count)]
    pipe = client.pipeline(transaction=False)
    for i, token in enumerate(tokens):
        pipe.set(f"{PREFIX}bare:rt:{token}", text, ex=3600)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return tokens


def bare_codes(client: redis.Redis, code_record: dict[str, Any], count: int) -> list[str]:
    """Codes for the bare app: its key is the code itself, its value a code record."""
    text = json.dumps(code_record, separators=(",", ":"))
    codes = [new_value(AUTHORIZATION_CODE) for _ in range(count)]
    pipe = client.pipeline(transaction=False)
    for i, code in enumerate(codes):
        pipe.set(f"{PREFIX}bare:code:{code}", text, ex=600)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return codes


# A Lua clone of one login's long-lived records (grant, access token, refresh token),
# ARGV: prefix, first number, count, TTL, then the three JSON templates in which
# GRANT_ID_PLACEHOLDER stands for the grant id. Keys are 43 characters like the sha256
# ones the proxy uses (they are never looked up: the population around the sample).
_CLONE = """
local prefix, first, count, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = first, first + count - 1 do
  local h = redis.sha1hex('a2a-bench' .. i)
  local id = string.sub(h .. h, 1, 43)
  local grant_id = 'a2a_gr_' .. string.sub(redis.sha1hex('g' .. i), 1, 22)
  redis.call('SET', prefix .. 'grant:' .. id, (string.gsub(ARGV[5], 'GRANT_ID_PLACEHOLDER',
             grant_id)), 'EX', ttl)
  redis.call('SET', prefix .. 'at:' .. id, (string.gsub(ARGV[6], 'GRANT_ID_PLACEHOLDER',
             grant_id)), 'EX', ttl)
  redis.call('SET', prefix .. 'rt:' .. id, (string.gsub(ARGV[7], 'GRANT_ID_PLACEHOLDER',
             grant_id)), 'EX', ttl)
end
return count
"""
PLACEHOLDER = "GRANT_ID_PLACEHOLDER"


@dataclass
class Templates:
    """One real login's grant, access token and refresh token records."""

    grant: dict[str, Any]
    at: dict[str, Any]
    rt: dict[str, Any]

    @classmethod
    def of(cls, client: redis.Redis, access_token: str, refresh_token: str | None = None
           ) -> Templates:  # fmt: skip
        at = read_record(client, AccessToken.kind, access_token)
        grant_id = grant_of(ACCESS_TOKEN, access_token)
        assert grant_id is not None
        grant = read_record(client, Grant.kind, grant_id)
        # as the proxy writes it: the refresh token's value names the grant
        rt = {"iat": at["iat"], "exp": at["iat"] + 2592000}
        if refresh_token is not None:
            rt = read_record(client, RefreshToken.kind, refresh_token)
        return cls(grant, at, rt)

    def text(self, record: dict[str, Any], grant_id: str, ttl: int) -> str:
        now = int(time.time())
        # the records that name their grant (an access token's value names it instead)
        data = {**record, "grant_id": grant_id} if "grant_id" in record else dict(record)
        if "exp" in data:  # still valid for the whole run
            data["iat"], data["exp"] = now, now + ttl
        return json.dumps(data, separators=(",", ":"))


def clone_sample(client: redis.Redis, templates: Templates, count: int, ttl: int
                 ) -> list[str]:  # fmt: skip
    """``count`` live access tokens (grant + access token records under the proxy's own
    keys), by a pipeline; the tokens."""
    tokens = []
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        grant_id = new_grant_id()
        token = new_grant_value(ACCESS_TOKEN, grant_id)
        pipe.set(record_key(PREFIX, Grant.kind, grant_id),
                 templates.text(templates.grant, grant_id, ttl), ex=ttl)
        pipe.set(record_key(PREFIX, AccessToken.kind, token),
                 templates.text(templates.at, grant_id, ttl), ex=ttl)
        tokens.append(token)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return tokens


def copy_sample(client: redis.Redis, tokens: list[str], db: int) -> None:
    """The records of :func:`clone_sample`'s ``tokens`` (grant and access token), copied
    with their TTLs into database ``db`` of the same server (Redis ``COPY ... DB``)."""
    pipe = client.pipeline(transaction=False)
    for i, token in enumerate(tokens):
        grant_id = grant_of(ACCESS_TOKEN, token)
        assert grant_id is not None
        for key in (record_key(PREFIX, Grant.kind, grant_id),
                    record_key(PREFIX, AccessToken.kind, token)):
            pipe.copy(key, key, destination_db=db)
        if i % 5000 == 4999:
            assert all(pipe.execute()), "a key was already in the database"
    assert all(pipe.execute()), "a key was already in the database"


def clone_population(client: redis.Redis, templates: Templates, count: int, ttl: int,
                     batch: int = 20000) -> None:  # fmt: skip
    """``count`` logins' grant + access + refresh token records, cloned inside Redis."""
    script = client.register_script(_CLONE)
    texts = [templates.text(r, PLACEHOLDER, ttl)
             for r in (templates.grant, templates.at, templates.rt)]
    for first in range(0, count, batch):
        script(args=[PREFIX, first, min(batch, count - first), ttl, *texts])


def hashed(value: str) -> str:
    return b64(hashlib.sha256(value.encode()).digest())
