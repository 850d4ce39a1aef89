"""The command line: check-config, keys generate."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jwcrypto import jwk

from proxy.observability.logs import reset_logging
from proxy.ops.cli import main
from proxy.ops.demo import DEMO_ENV

ROOT = Path(__file__).resolve().parents[2]


def test_check_config_lists_every_problem_and_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in DEMO_ENV:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    assert main(["check-config", str(tmp_path / "config.yaml")]) == 2
    err = capsys.readouterr().err
    assert "keys.token_encryption: environment variable TOKEN_ENCRYPTION_KEY is not set" in err
    assert "banks[0].client_secret" in err
    assert "keys.signing[0].file" in err


def demo_config_in(folder: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's config.yaml in ``folder``, with what it needs: a signing key, the
    RFC 9396 schema it names, and its environment (secrets of 32 bytes or more)."""
    (folder / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    shutil.copytree(ROOT / "docs" / "schemas", folder / "docs" / "schemas")
    (folder / "keys").mkdir()
    assert main(["keys", "generate"]) == 0
    (folder / "keys" / "signing.jwk").write_text(capsys.readouterr().out)
    for name in DEMO_ENV:
        monkeypatch.setenv(name, f"value-{name}-" + "v" * 32)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", "A" * 43)
    return folder / "config.yaml"


def test_check_config_ok(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path) -> None:
    config = demo_config_in(tmp_path, capsys, monkeypatch)
    assert main(["check-config", str(config)]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize(("alg", "kty"), [("ES256", "EC"), ("EdDSA", "OKP"), ("RS256", "RSA")])
def test_keys_generate_prints_a_private_jwk(capsys: pytest.CaptureFixture[str], alg: str,
                                            kty: str) -> None:
    assert main(["keys", "generate", "--alg", alg]) == 0
    params = json.loads(capsys.readouterr().out)
    key = jwk.JWK(**params)
    assert key.has_private and params["kty"] == kty and params["alg"] == alg
    assert params["kid"] == key.thumbprint()


def test_python_dash_m_proxy() -> None:
    result = subprocess.run([sys.executable, "-m", "proxy", "check-config", "/nonexistent.yaml"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert "/nonexistent.yaml" in result.stderr


@pytest.mark.parametrize("flag", ["--keepalive-timeout", "--body-timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "soon"])
def test_serve_timeouts_are_positive_seconds(capsys: pytest.CaptureFixture[str], flag: str,
                                             value: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--config", "config.yaml", flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err


def test_serve_timeout_defaults() -> None:
    """Longer than the usual load balancer idle timeout (60 s); a body in 10 s."""
    from proxy.ops.cli import _parser

    args = _parser().parse_args(["serve", "--config", "config.yaml"])
    assert (args.keepalive_timeout, args.body_timeout) == (75.0, 10.0)


def test_serve_refuses_an_otel_exporter_it_does_not_have(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """docs/observability.md: an exporter or protocol named in OTEL_* that the proxy lacks
    stops serve at start-up, before it listens."""
    config = demo_config_in(tmp_path, capsys, monkeypatch)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    try:
        assert main(["serve", "--config", str(config), "--port", "1"]) == 2
    finally:
        reset_logging()  # serve configured the logs for this test's captured stdout
    assert "tracing_not_started" in capsys.readouterr().out
