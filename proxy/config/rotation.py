"""Signing key rotation: which configured key signs when, and when a retired one may go.

Every ``keys.signing`` entry is published in /jwks as soon as the config is loaded.
One key signs at a time: the newest (by ``not_before``) whose window
``[not_before, not_after)`` holds the moment of signing; among equals, the first in
the list (so a list without dates behaves as before: the first signs). The choice
depends on the clock alone, so every instance running the same config switches at
the same second without talking to the others.

A key that stopped signing stays published for :func:`retention` seconds, so that
everything it signed can still be verified with /jwks until it expires.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from proxy.config.settings import Lifetimes, SigningKey

# the leeway verifiers commonly allow on exp (clock skew)
CLOCK_LEEWAY = 60

_START, _END = -math.inf, math.inf


def retention(lifetimes: Lifetimes) -> int:
    """Seconds a key stays published after it last signed: the longest life of what it
    signs. An ID token lives ``id_token`` seconds; a JWT introspection response (RFC
    9701) carries no exp, but describes an access token that lives ``access_token``
    seconds, and a resource server may keep it that long. Plus the verifiers' leeway."""
    return max(lifetimes.id_token, lifetimes.access_token) + CLOCK_LEEWAY


def signer_at(keys: Sequence[SigningKey], now: float) -> SigningKey | None:
    """The key that signs at ``now``: the newest by not_before whose window holds now."""
    best: SigningKey | None = None
    for key in keys:
        if key.may_sign(now) and (best is None or _start(key) > _start(best)):
            best = key
    return best


def _start(key: SigningKey) -> float:
    return _START if key.not_before is None else key.not_before


@dataclass(frozen=True)
class Stretch:
    """From ``start`` to ``end`` (unix seconds, ±inf when open) ``key`` signs (None: no key)."""

    start: float
    end: float
    key: SigningKey | None


def timeline(keys: Sequence[SigningKey]) -> list[Stretch]:
    """All of time, cut where the signing key changes."""
    bounds = sorted({t for k in keys for t in (k.not_before, k.not_after) if t is not None})
    edges = [_START, *bounds, _END]
    stretches: list[Stretch] = []
    for start, end in itertools.pairwise(edges):
        # the signer is the same all through [start, end); ask at a second inside it
        at = start if start != _START else (end - 1 if end != _END else 0)
        key = signer_at(keys, at)
        if stretches and stretches[-1].key is key:
            stretches[-1] = Stretch(stretches[-1].start, end, key)
        else:
            stretches.append(Stretch(start, end, key))
    return stretches


def first_gap(keys: Sequence[SigningKey], since: float) -> float | None:
    """The first moment from ``since`` on when no key can sign, if there is one."""
    for stretch in timeline(keys):
        if stretch.key is None and stretch.end > since:
            return max(stretch.start, since)
    return None


@dataclass(frozen=True)
class KeyStatus:
    key: SigningKey
    signing: bool  # signs now
    # when it signs: the stretch holding now, else the next one, else the last one;
    # None when it never signs under this config
    signs: Stretch | None
    # when it may leave /jwks: the end of its last stretch plus retention (its not_after
    # plus retention if it never signs under this config); None: not while it may sign
    removable_after: float | None

    def removable(self, now: float) -> bool:
        return self.removable_after is not None and self.removable_after <= now


def key_status(keys: Sequence[SigningKey], lifetimes: Lifetimes, now: float) -> list[KeyStatus]:
    """Each configured key's status at ``now``, in config order."""
    stretches = timeline(keys)
    keep = retention(lifetimes)
    found = []
    for key in keys:
        own = [s for s in stretches if s.key is key]
        current = next((s for s in own if s.end > now), own[-1] if own else None)
        last_signs = own[-1].end if own else (key.not_after or _END)
        removable = None if last_signs == _END else last_signs + keep
        signing = current is not None and current.start <= now < current.end
        found.append(KeyStatus(key, signing, current, removable))
    return found


def iso(t: float) -> str:
    """``t`` as ISO 8601 UTC to the second; the open ends as "-"."""
    if not math.isfinite(t):
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
