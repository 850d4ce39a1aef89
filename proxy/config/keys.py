"""Key material named in the config: signing keys, a bank's private key, the
token encryption key, TLS client certificates."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time
from datetime import date, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jwcrypto import jwk
from jwcrypto.common import JWException

from proxy.config.env import UNRESOLVED
from proxy.config.errors import Problems, child
from proxy.config.reader import Section, describe
from proxy.config.rotation import first_gap, iso, signer_at
from proxy.config.settings import SigningKey

GENERATE_KEY = (
    "python -c 'import secrets,base64;print(base64.urlsafe_b64encode("
    'secrets.token_bytes(32)).rstrip(b"=").decode())\''
)
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")

# kty (and crv) -> the one JWS alg we sign with for that key
_SIGNING_ALGS = {("EC", "P-256"): "ES256", ("OKP", "Ed25519"): "EdDSA", ("RSA", None): "RS256"}
_MIN_RSA_BITS = 2048
SUPPORTED = "EC P-256 (ES256), OKP Ed25519 (EdDSA), RSA of 2048 bits or more (RS256)"


class KeyFileError(Exception):
    """A key file is missing, unreadable or not what it should be."""


def resolve(base_dir: Path, name: str) -> Path:
    """``name`` taken relative to the config file's folder (unless absolute)."""
    return (base_dir / Path(name).expanduser()).resolve()


def read_private_key(path: Path) -> tuple[jwk.JWK, str]:
    """The private key in ``path`` (a JWK in JSON, or PEM), and the file's text."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise KeyFileError(f"cannot read {path}: {reason}") from exc
    try:
        if text.lstrip().startswith("{"):
            key = jwk.JWK.from_json(text)
        else:
            key = jwk.JWK.from_pem(text.encode())
    except (JWException, ValueError, TypeError) as exc:
        detail = f": {exc}" if str(exc) else ""
        raise KeyFileError(
            f"{path} does not hold a private JWK (JSON) or a PEM private key{detail}"
        ) from exc
    if not key.has_private or key.get("kty") == "oct":
        raise KeyFileError(f"{path} holds a public key; a private key is needed")
    return key, text


def signing_key(path: Path) -> jwk.JWK:
    """The signing key in ``path``, with its ``kid`` and ``alg`` set."""
    key, _ = read_private_key(path)
    kty = key.get("kty")
    crv = key.get("crv") if kty != "RSA" else None
    alg = _SIGNING_ALGS.get((str(kty), crv))
    if alg is None:
        kind = f"{kty} {crv}" if crv else str(kty)
        raise KeyFileError(f"{path}: unsupported key type {kind}; supported: {SUPPORTED}")
    if kty == "RSA":
        bits = int(key.get_op_key("sign").key_size)
        if bits < _MIN_RSA_BITS:
            raise KeyFileError(f"{path}: RSA key of {bits} bits; at least {_MIN_RSA_BITS} needed")
    if key.get("alg") not in (None, alg):
        raise KeyFileError(f"{path}: alg is {key.get('alg')!r}, but a {kty} key here signs {alg}")
    if key.get("use") not in (None, "sig"):
        raise KeyFileError(f"{path}: use is {key.get('use')!r}; a signing key needs 'sig'")
    if not key.get("kid"):
        key["kid"] = key.thumbprint()  # RFC 7638
    if not key.get("alg"):
        key["alg"] = alg
    return key


def read_signing_keys(
    keys: Section, base_dir: Path, now: float | None = None
) -> tuple[SigningKey, ...]:
    """``keys.signing``: a list of ``{file, not_before, not_after}``. All are published;
    the newest (by not_before) whose window holds the moment of signing signs. A
    schedule under which no key could sign now, or at some later moment, is refused."""
    entries = keys.items("signing", required=True)
    if keys.raw("signing") == []:
        keys.report("signing", "needs at least one entry, like - file: keys/signing.jwk")
    found: list[SigningKey] = []
    paths: dict[str, str] = {}
    complete = True
    for path, value in entries:
        entry = Section(value, path, keys.problems, ("file", "not_before", "not_after"))
        before = len(keys.problems.errors)
        name = entry.text("file", required=True)
        not_before = read_instant(entry, "not_before")
        not_after = read_instant(entry, "not_after")
        if not_before is not None and not_after is not None and not_after <= not_before:
            entry.report("not_after", f"must be after not_before ({iso(not_before)}); "
                         f"got {iso(not_after)}")  # fmt: skip
        key = None
        if name:
            try:
                key = signing_key(resolve(base_dir, name))
            except KeyFileError as exc:
                entry.report("file", str(exc))
        if key is not None:
            kid = str(key.get("kid"))
            if kid in paths:
                entry.report(
                    "file", f"kid {kid!r} is already used by {paths[kid]}; kids must be unique"
                )
            else:
                paths[kid] = path
                found.append(SigningKey(key, not_before, not_after, name))
        complete &= len(keys.problems.errors) == before
    if complete and found:
        _check_schedule(keys, found, paths, time.time() if now is None else now)
    return tuple(found)


def _check_schedule(
    keys: Section, found: list[SigningKey], paths: dict[str, str], now: float
) -> None:
    """Some key must be able to sign now and at every later moment."""
    gap = first_gap(found, now)
    if gap is None:
        return
    windows = "; ".join(
        f"{paths[k.kid]} may sign from {_or(k.not_before, 'the start')} "
        f"until {_or(k.not_after, 'the end')}"
        for k in found
    )
    if gap <= now:
        keys.report("signing", f"no key can sign now ({iso(now)}): {windows}. Leave out "
                    "not_before on the key that signs today, or move it into the past")  # fmt: skip
        return
    # the key signing just before the gap ends it (moments are whole seconds)
    ending = signer_at(found, gap - 1) or next(k for k in found if k.not_after == gap)
    keys.problems.add(
        child(paths[ending.kid], "not_after"),
        f"from {iso(gap)} no key could sign: add the next key, with a not_before at or "
        "before then, or move this not_after later",
    )


def _or(moment: int | None, open_end: str) -> str:
    return open_end if moment is None else iso(moment)


# unix seconds above this are surely milliseconds (year 5138)
_MAX_UNIX = 10**11
_TIMESTAMP_FORM = "an ISO 8601 time with its zone, like 2025-03-01T00:00:00Z, or unix seconds"


def read_instant(entry: Section, key: str) -> int | None:
    """A moment: an ISO 8601 timestamp with a zone (YAML parses an unquoted one into a
    datetime), or unix seconds (an integer, or a string of digits from ``${...}``)."""
    value = entry.raw(key)
    if value is None:
        return None
    moment: float | None = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    if isinstance(value, date) and not isinstance(value, datetime):
        entry.report(key, f"{value.isoformat()} needs a time and a zone, "
                     f"like {value.isoformat()}T00:00:00Z")  # fmt: skip
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            entry.report(key, f"{value.isoformat(sep='T')} has no zone; add Z for UTC, "
                         f"like {value.strftime('%Y-%m-%dT%H:%M:%S')}Z")  # fmt: skip
            return None
        moment = value.timestamp()
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_UNIX:
        moment = value
    elif isinstance(value, int) and not isinstance(value, bool) and value >= _MAX_UNIX:
        entry.report(key, f"must be unix seconds ({value} looks like milliseconds)")
        return None
    if moment is None:
        entry.report(key, f"must be {_TIMESTAMP_FORM} (got {describe(value)})")
        return None
    return math.floor(moment)


def read_token_encryption(keys: Section) -> tuple[bytes, ...]:
    """``keys.token_encryption``: one key, or a list of keys (a rotation); each 32 bytes,
    base64url with or without padding. The first encrypts, every one decrypts. Empty
    when anything is wrong (each problem is reported)."""
    value = keys.raw("token_encryption", required=True)
    if value is None:
        return ()
    if not isinstance(value, list):
        key = _token_key(keys.problems, keys.at("token_encryption"), value)
        return () if key is None else (key,)
    if not value:
        keys.report("token_encryption", "needs at least one key; the first encrypts")
    found: list[bytes] = []
    seen: dict[bytes, str] = {}
    complete = True
    for path, element in keys.items("token_encryption"):
        key = None if element is UNRESOLVED else _token_key(keys.problems, path, element)
        if key is None:
            complete = False
        elif key in seen:
            keys.problems.add(path, f"is the same key as {seen[key]}; list each key once")
            complete = False
        else:
            seen[key] = path
            found.append(key)
    return tuple(found) if complete else ()


def _token_key(problems: Problems, path: str, value: object) -> bytes | None:
    if not isinstance(value, str):
        problems.add(path, f"must be a string, or a list of them (got {describe(value, True)})")
        return None
    raw = b""
    if _B64URL.fullmatch(value):
        try:
            raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
        except ValueError:
            raw = b""
    if len(raw) != 32:
        problems.add(path, f"must be 32 random bytes, base64url (generate one with: "
                     f"{GENERATE_KEY})")  # fmt: skip
        return None
    return raw


def token_key_id(key: bytes) -> str:
    """A token encryption key's id: its RFC 7638 thumbprint as an ``oct`` JWK (the SHA-256
    of ``{"k":...,"kty":"oct"}``), the ``kid`` in the header of every value it seals. Two
    configs that hold the same key give it the same id; no two keys share one."""
    k = base64.urlsafe_b64encode(key).rstrip(b"=").decode()
    members = json.dumps({"k": k, "kty": "oct"}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(members.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def check_tls_files(tls: Section, base_dir: Path) -> tuple[str, str] | None:
    """``tls: {cert, key}``: both PEM files, resolved; None when either is wrong."""
    cert_name = tls.text("cert", required=True)
    key_name = tls.text("key", required=True)
    ok = bool(cert_name and key_name)
    cert = resolve(base_dir, cert_name) if cert_name else None
    key = resolve(base_dir, key_name) if key_name else None
    if cert is not None and not pem_ok(tls.problems, child(tls.path, "cert"), cert, True):
        ok = False
    if key is not None and not pem_ok(tls.problems, child(tls.path, "key"), key, False):
        ok = False
    return (str(cert), str(key)) if ok and cert and key else None


def pem_ok(problems: Problems, path: str, file: Path, certificate: bool) -> bool:
    try:
        data = file.read_bytes()
    except OSError as exc:
        problems.add(path, f"cannot read {file}: {exc.strerror or exc}")
        return False
    try:
        if certificate:
            x509.load_pem_x509_certificates(data)
        else:
            load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        what = "a PEM certificate" if certificate else "an unencrypted PEM private key"
        problems.add(path, f"{file} does not hold {what} ({exc})")
        return False
    return True
