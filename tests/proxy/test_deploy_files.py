"""The deployment files (Dockerfile, docs/deploy/): what a change must not break.

docs/deploy.md explains each rule. The example config goes through the real config
loader; the Redis arguments of docs/deploy/compose.yaml start a real ``redis-server``
and every store operation runs as its ACL user; the Kubernetes manifests keep their
probes, security context and grace period. Docker is not needed: nothing is built.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from proxy.config import load_config
from proxy.config.env import Protected
from proxy.config.settings import StoreSettings
from proxy.ops.cli import DRAIN_DELAY, SHUTDOWN_TIMEOUT
from proxy.ops.keys import generate_signing_key
from proxy.store.base import Store
from proxy.store.redis import RedisStore
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"
K8S = DEPLOY / "k8s"
CONFIG = DEPLOY / "config.yaml"
CONFIG_DIR = "/etc/app2app-proxy"
PORT = 8080
# at least the defaults of `serve`: 2 s drain + 20 s shutdown
MIN_GRACE = 22
ACL_USER = "app2app"
# `${NAME}` / `${NAME:-default}` in config.yaml (proxy.config.env), compose's `${NAME:?msg}`
REFERENCE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")

YAML_FILES = sorted(DEPLOY.rglob("*.yaml"))


def _documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _k8s(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        doc
        for path in sorted(K8S.glob("*.yaml"))
        for doc in _documents(path)
        if doc.get("kind") == kind and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in docs/deploy/k8s, got {found}"
    return found[0]


def _compose() -> dict[str, Any]:
    [compose] = _documents(DEPLOY / "compose.yaml")
    return compose  # type: ignore[no-any-return]


def _raw_config() -> Any:
    """docs/deploy/config.yaml parsed the way the loader does, ${...} left as they are."""
    protected = Protected(CONFIG.read_text(encoding="utf-8"))
    return protected.restore(yaml.safe_load(protected.text))


def _strings(data: object) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def _required_env() -> set[str]:
    """The variables config.yaml needs: its references without a default (not comments)."""
    names = set()
    for text in _strings(_raw_config()):
        for match in REFERENCE.finditer(text):
            if not match.group("rest").startswith(":-"):
                names.add(match.group("name"))
    return names


def _key_files(config: dict[str, Any]) -> list[str]:
    """Every file the config names (signing keys, bank keys and TLS client certificates)."""
    files = [entry["file"] for entry in config["keys"]["signing"]]
    for bank in config.get("banks", []):
        if "private_key" in bank:
            files.append(bank["private_key"])
        if "tls" in bank:
            files += [bank["tls"]["cert"], bank["tls"]["key"]]
    return files


def _example_env() -> dict[str, str]:
    # secrets as the docs say to make them (a client_secret has at least 32 bytes)
    env = {name: secrets.token_urlsafe(32) for name in _required_env()}
    env.update(
        ISSUER="https://login.merchant.example",
        STORE_URL="rediss://app2app:password@redis.internal.example:6380/0",
        TOKEN_ENCRYPTION_KEY=secrets.token_urlsafe(32),
    )
    return env


@pytest.mark.parametrize("path", YAML_FILES, ids=[str(p.relative_to(DEPLOY)) for p in YAML_FILES])
def test_every_yaml_file_parses(path: Path) -> None:
    assert _documents(path), f"{path} holds no document"


def test_the_yaml_files_are_all_there() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in YAML_FILES}
    assert {
        "config.yaml", "compose.yaml", "k8s/deployment.yaml", "k8s/service.yaml",
        "k8s/configmap.yaml", "k8s/secret.yaml", "k8s/pdb.yaml",
    } <= names  # fmt: skip


# --- the example config ----------------------------------------------------------------


def test_the_example_config_passes_the_config_loader(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    shutil.copy(CONFIG, config_file)
    raw = _raw_config()
    for name in _key_files(raw):
        assert not Path(name).is_absolute(), f"{name}: keep key paths relative to the config"
        assert name.endswith(".jwk"), f"{name}: generate it here, or extend this test"
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(generate_signing_key().export(private_key=True))
    config = load_config(config_file, environ=_example_env())
    assert config.issuer == "https://login.merchant.example"
    assert config.store.url.startswith("rediss://")
    assert (config.listen.host, config.listen.port) == ("0.0.0.0", PORT)


def test_the_example_config_names_every_secret_by_reference() -> None:
    """No literal secret: client secrets, the salt and the encryption key are ${...}."""
    raw = _raw_config()
    secrets_ = [raw["keys"]["token_encryption"], raw["subject"]["salt"], raw["store"]["url"]]
    secrets_ += [b["client_secret"] for b in raw["banks"] if "client_secret" in b]
    secrets_ += [r["client_secret"] for r in raw["resource_servers"] if "client_secret" in r]
    secrets_ += [c["client_secret"] for c in raw["clients"] if "client_secret" in c]
    for value in secrets_:
        assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", value), f"{value!r} is not a ${{NAME}}"


# --- compose ---------------------------------------------------------------------------


def _redis_command() -> list[str]:
    return [str(arg) for arg in _compose()["services"]["redis"]["command"]]


def _flag(args: list[str], name: str) -> str:
    assert args.count(name) == 1, f"{name} must be given once in {args}"
    return args[args.index(name) + 1]


def _acl_rules(args: list[str]) -> list[str]:
    """The rules of ``--user app2app ...`` up to the next ``--`` flag."""
    starts = [i for i, arg in enumerate(args) if arg == "--user" and args[i + 1] == ACL_USER]
    assert len(starts) == 1, f"one --user {ACL_USER} expected in {args}"
    rules = []
    for arg in args[starts[0] + 2 :]:
        if arg.startswith("--"):
            break
        rules.append(arg)
    return rules


def test_compose_redis_settings() -> None:
    args = _redis_command()
    assert args[0] == "redis-server"
    assert _flag(args, "--maxmemory-policy") == "noeviction"
    assert _flag(args, "--appendonly") == "yes"
    assert _flag(args, "--appendfsync") == "everysec"
    assert _flag(args, "--timeout") == "0"
    assert re.fullmatch(r"[0-9]+[kmg]b?", _flag(args, "--maxmemory"), re.IGNORECASE)
    assert "notify-keyspace-events" not in " ".join(args)
    # the default user is off; the proxy's user touches the proxy's keys only
    default = args.index("default")
    assert args[default - 1 : default + 2] == ["--user", "default", "off"]
    rules = _acl_rules(args)
    assert "~a2a:*" in rules and "-@all" in rules and "resetchannels" in rules
    assert not any(rule in ("allkeys", "~*", "+@all", "allcommands", "nopass") for rule in rules)


def test_compose_redis_service() -> None:
    redis_service = _compose()["services"]["redis"]
    image = redis_service["image"]
    assert re.fullmatch(r"redis:7(\.[0-9]+)*(-[a-z0-9.]+)?", image), image
    assert redis_service["healthcheck"]["test"]
    assert any(str(v).endswith(":/data") for v in redis_service["volumes"]), "AOF volume"
    assert "redis-data" in _compose()["volumes"]


def test_compose_proxy_service() -> None:
    proxy = _compose()["services"]["proxy"]
    assert proxy["build"]["dockerfile"] == "Dockerfile"
    assert (DEPLOY / proxy["build"]["context"] / "Dockerfile").resolve() == ROOT / "Dockerfile"
    assert proxy["depends_on"]["redis"]["condition"] == "service_healthy"
    volumes = {v.split(":")[1]: v for v in proxy["volumes"]}
    assert volumes[f"{CONFIG_DIR}/config.yaml"] == f"./config.yaml:{CONFIG_DIR}/config.yaml:ro"
    assert volumes[f"{CONFIG_DIR}/keys"].endswith(":ro")
    assert proxy["read_only"] is True and "/tmp" in proxy["tmpfs"]
    assert proxy["cap_drop"] == ["ALL"]
    environment = proxy["environment"]
    missing = _required_env() - set(environment)
    assert not missing, f"compose.yaml does not set {sorted(missing)} for config.yaml"
    assert environment["STORE_URL"].startswith(f"redis://{ACL_USER}:")
    grace = int(str(proxy["stop_grace_period"]).removesuffix("s"))
    assert grace >= MIN_GRACE


def test_the_documented_acl_is_composes() -> None:
    """docs/deploy.md shows the ACL compose.yaml runs (and this file tests)."""
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    lines = [line.split() for line in text.splitlines() if line.startswith(f"user {ACL_USER} ")]
    assert len(lines) == 1, "docs/deploy.md: one `user app2app ...` line expected"
    documented = [rule for rule in lines[0][2:] if not rule.startswith(">")]
    composed = [rule for rule in _acl_rules(_redis_command()) if not rule.startswith(">")]
    assert documented == composed


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server with compose.yaml's arguments (password and port ours): its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("this test needs redis-server on PATH (apt-get install redis-server)")
    password = secrets.token_urlsafe(16)
    args = [
        f">{password}" if arg.startswith(">") else arg for arg in _redis_command()[1:]
    ]
    port = free_port()
    process = subprocess.Popen(
        [executable, *args, "--port", str(port), "--bind", "127.0.0.1",
         "--dir", str(tmp_path), "--save", ""],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = redis.Redis(port=port, username=ACL_USER, password=password, socket_timeout=1)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"redis-server refused compose.yaml's arguments:\n{output}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("redis-server with compose.yaml's arguments did not start")
                time.sleep(0.05)
        yield f"redis://{ACL_USER}:{password}@127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _protocol_methods() -> set[str]:
    return {
        name
        for name, value in vars(Store).items()
        if callable(value) and not name.startswith("_") and name != "close"
    }


async def test_every_store_operation_runs_as_the_acl_user(acl_redis: str) -> None:
    """A store operation needing a command the ACL lacks fails here (NOPERM): allow it in
    compose.yaml and docs/deploy.md. A new Store method must be added below."""
    store = RedisStore.from_settings(StoreSettings(url=acl_redis, prefix="a2a:"))
    grant = uuid.uuid4().hex

    async def scan() -> None:  # SCAN, then MGET of what it found
        found = [record async for records in store.scan("grant", batch=1) for record in records]
        assert found == [{"grant_id": grant, "n": 2}]

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "ping": lambda: store.ping(),
        "upsert": lambda: store.upsert("grant", grant, {"grant_id": grant}, 60),
        "add": lambda: store.add("code", grant, {"grant_id": grant}, 60),
        "add_many": lambda: store.add_many([("at2", grant, {"grant_id": grant}, 60),
                                            ("rt2", grant, {"grant_id": grant}, 60)]),
        "replace": lambda: store.replace("grant", grant, {"grant_id": grant, "n": 2}, 60),
        "find": lambda: store.find("grant", grant),
        "find_many": lambda: store.find_many([("grant", grant), ("code", grant)]),
        "upsert_many": lambda: store.upsert_many([("at", grant, {"grant_id": grant}, 60),
                                                  ("rt", grant, {"grant_id": grant}, 60)]),
        "consume": lambda: store.consume("code", grant, now=1, marker_ttl=30),
        "settle": lambda: store.settle("code", grant, {"issued": True}),
        "hit": lambda: store.hit("counter", grant, 60),
        "scan": scan,
        "destroy": lambda: store.destroy("code", grant),
        "revoke_grant": lambda: store.revoke_grant(grant),
    }
    methods = _protocol_methods()
    untested = methods - set(calls)
    assert not untested, f"exercise {sorted(untested)} here, and allow their Redis commands"
    try:
        for name, call in calls.items():
            if name in methods:
                await call()
        # the scripts again, now loaded: a second consume finds the marker of the first
        code = uuid.uuid4().hex
        assert await store.add("code", code, {"grant_id": grant}, 60)
        first = await store.consume("code", code, now=2, marker_ttl=30)
        again = await store.consume("code", code, now=3, marker_ttl=30)
        assert first is not None and not first.replay
        assert again is not None and again.replay
        assert await store.find("grant", grant) is None  # revoked above
    finally:
        await store.close()


# --- Kubernetes ------------------------------------------------------------------------


def _container() -> dict[str, Any]:
    deployment = _k8s("Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def _arg(args: list[str], name: str, default: float) -> float:
    return float(args[args.index(name) + 1]) if name in args else default


def test_deployment_replicas_and_shutdown() -> None:
    deployment = _k8s("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    args = [str(a) for a in _container()["args"]]
    assert args[:3] == ["serve", "--config", f"{CONFIG_DIR}/config.yaml"]
    assert int(_arg(args, "--port", 0)) == PORT
    drain = _arg(args, "--drain-delay", DRAIN_DELAY)
    shutdown = _arg(args, "--shutdown-timeout", SHUTDOWN_TIMEOUT)
    grace = pod["terminationGracePeriodSeconds"]
    assert grace >= MIN_GRACE and grace >= drain + shutdown
    # the process drains on SIGTERM itself (docs/deploy.md#kubernetes)
    assert "preStop" not in _container().get("lifecycle", {})


def test_deployment_probes_hit_the_container_port() -> None:
    container = _container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert PORT in ports.values()

    def probe(kind: str) -> tuple[str, int]:
        get = container[kind]["httpGet"]
        port = get["port"]
        return get["path"], ports[port] if isinstance(port, str) else port

    assert probe("readinessProbe") == ("/readyz", PORT)
    assert probe("livenessProbe") == ("/healthz", PORT)
    assert probe("startupProbe") == ("/healthz", PORT)


def test_deployment_security_context() -> None:
    pod = _k8s("Deployment")["spec"]["template"]["spec"]
    context = _container()["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert not context["capabilities"].get("add")
    seccomp = context.get("seccompProfile") or pod["securityContext"]["seccompProfile"]
    assert seccomp["type"] == "RuntimeDefault"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    resources = _container()["resources"]
    assert resources["requests"] and resources["limits"]["memory"]
    # /tmp is the only place to write
    mounts = {m["mountPath"]: m for m in _container()["volumeMounts"]}
    tmp = next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"]["name"])
    assert "emptyDir" in tmp
    assert all(m.get("readOnly") for path, m in mounts.items() if path != "/tmp")


def test_deployment_provides_what_the_config_needs() -> None:
    """Every ${NAME} from env or the env Secret; every key file in the projected volume."""
    pod = _k8s("Deployment")["spec"]["template"]["spec"]
    container = _container()
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        secret = _k8s("Secret", source["secretRef"]["name"])
        names |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    missing = _required_env() - names
    assert not missing, f"the Deployment does not set {sorted(missing)} for config.yaml"

    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == CONFIG_DIR]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    files: dict[str, tuple[str, str, str]] = {}
    for source in volume["projected"]["sources"]:
        kind = "configMap" if "configMap" in source else "secret"
        for item in source[kind]["items"]:
            files[item["path"]] = (kind, source[kind]["name"], item["key"])
    assert files["config.yaml"][:2] == ("configMap", "app2app-proxy-config")
    raw = _raw_config()
    for name in _key_files(raw):
        kind, secret_name, key = files[name]
        assert kind == "secret", f"{name} is a key: it belongs in a Secret"
        assert key in _k8s("Secret", secret_name)["stringData"]


def test_the_configmap_holds_the_example_config() -> None:
    configmap = _k8s("ConfigMap", "app2app-proxy-config")
    assert configmap["data"]["config.yaml"] == CONFIG.read_text(encoding="utf-8"), (
        "k8s/configmap.yaml differs from docs/deploy/config.yaml: regenerate it"
    )


def test_the_secrets_are_placeholders() -> None:
    for path in K8S.glob("*.yaml"):
        for doc in _documents(path):
            if doc["kind"] == "Secret":
                assert "data" not in doc, "placeholders go in stringData, readable as such"
                for key, value in doc["stringData"].items():
                    assert "REPLACE-ME" in value, f"{doc['metadata']['name']}.{key}"


def test_service_and_pdb_select_the_pods() -> None:
    labels = _k8s("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = _k8s("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"].get("sessionAffinity", "None") == "None"
    [port] = service["spec"]["ports"]
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    target = port["targetPort"]
    assert (ports[target] if isinstance(target, str) else target) == PORT
    pdb = _k8s("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]


# --- Dockerfile ------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    pairs = []
    for line in text.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def _final_stage() -> list[tuple[str, str]]:
    pairs = _dockerfile()
    last_from = max(i for i, (instruction, _) in enumerate(pairs) if instruction == "FROM")
    return pairs[last_from:]


def test_dockerfile_base_images_are_tagged() -> None:
    stages: set[str] = set()
    froms = [rest.split() for instruction, rest in _dockerfile() if instruction == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a final stage"
    for words in froms:
        image = next(w for w in words if not w.startswith("--"))
        if image not in stages:
            assert ":" in image and not image.endswith(":latest"), f"pin a tag: {image}"
        if "AS" in (w.upper() for w in words):
            stages.add(words[-1])
    assert froms[-1][0].startswith("python:3.11-slim")


def test_dockerfile_final_stage() -> None:
    final = _final_stage()
    instructions = dict(final)
    assert instructions["USER"].split(":")[0] == "10001"
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    assert instructions["ENTRYPOINT"] == '["app2app-proxy"]'
    cmd = instructions["CMD"]
    assert f'"{CONFIG_DIR}/config.yaml"' in cmd and '"0.0.0.0"' in cmd and f'"{PORT}"' in cmd
    assert instructions["EXPOSE"] == str(PORT)
    runs = " ".join(rest for instruction, rest in final if instruction == "RUN")
    envs = " ".join(rest for instruction, rest in final if instruction == "ENV")
    assert "PIP_NO_CACHE_DIR=1" in envs or "--no-cache-dir" in runs
    assert "PYTHONDONTWRITEBYTECODE=1" in envs
    assert not re.search(r"apt-get install|build-essential|gcc", runs), "no compilers"
    # only the builder's wheels, each checked against the hash uv.lock holds for it
    assert "--no-index" in runs
    assert re.search(r"--require-hashes\s+-r /wheels/requirements.txt", runs)
    assert "COPY" not in instructions, "the final stage copies nothing: wheels are mounted"


def test_dockerignore_keeps_keys_out() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in lines and "**/*.jwk" in lines and "**/*.pem" in lines
