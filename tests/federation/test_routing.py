"""pick_bank: the routing table by acr_values."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from fedfakes import settings_for

from federation.routing import pick_bank

A = settings_for("https://a.example", id="bank-a", acr_values=("acr:a", "acr:a-web"))
B = settings_for("https://b.example", id="bank-b", acr_values=("acr:b",))
C = settings_for("https://c.example", id="bank-c", acr_values=("acr:c",))
BANKS = (A, B, C)


@pytest.mark.parametrize(
    ("requested", "allowed", "default", "banks", "expected"),
    [
        # the first requested value that names a bank the client may use
        (["acr:b"], None, None, BANKS, ("bank-b", "acr:b")),
        (["acr:unknown", "acr:c", "acr:b"], None, None, BANKS, ("bank-c", "acr:c")),
        (["acr:a-web"], None, "acr:b", BANKS, ("bank-a", "acr:a-web")),
        (["acr:b", "acr:a"], ["acr:a"], None, BANKS, ("bank-a", "acr:a")),
        # requested, but none usable: no silent rerouting, not even to the default
        (["acr:b"], ["acr:a"], "acr:a", BANKS, None),
        (["acr:unknown"], None, "acr:a", BANKS, None),
        # none requested: the client's default
        ([], None, "acr:c", BANKS, ("bank-c", "acr:c")),
        ([], ["acr:a", "acr:b"], "acr:b", BANKS, ("bank-b", "acr:b")),
        ([], ["acr:a"], "acr:b", BANKS, None),  # a default the client may not use
        ([], None, "acr:unknown", BANKS, None),
        # none requested, no default: the client's only bank
        ([], ["acr:b"], None, BANKS, ("bank-b", "acr:b")),
        ([], ["acr:a-web", "acr:a"], None, BANKS, ("bank-a", "acr:a-web")),
        ([], ["acr:unknown", "acr:c"], None, BANKS, ("bank-c", "acr:c")),
        ([], None, None, (A,), ("bank-a", "acr:a")),
        # none requested, no default, several banks: the proxy must ask
        ([], None, None, BANKS, None),
        ([], ["acr:a", "acr:b"], None, BANKS, None),
        ([], [], None, BANKS, None),
        ([], None, None, (), None),
    ],
)
def test_pick_bank(
    requested: Sequence[str],
    allowed: Sequence[str] | None,
    default: str | None,
    banks: Sequence[object],
    expected: tuple[str, str] | None,
):
    picked = pick_bank(requested, allowed, default, banks)  # type: ignore[arg-type]
    assert (None if picked is None else (picked[0].id, picked[1])) == expected


def test_returns_the_bank_settings_object():
    picked = pick_bank(["acr:b"], None, None, BANKS)
    assert picked is not None and picked[0] is B
