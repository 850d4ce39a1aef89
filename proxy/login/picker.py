"""The bank picker's pending choice: kept when a request names no bank, taken once.

A choice starts one login. It is taken with the store's single-use ``consume``
(as codes are): of two picks of one choice, however close together and on
whichever instances, exactly one gets the request; the other finds the marker
and is refused. So a page or prompt cannot be replayed into a stream of bank
logins (with a decoupled bank: a stream of pushes to someone's phone).
"""

from __future__ import annotations

from proxy.model.records import PendingChoice
from proxy.model.tokens import new_value
from proxy.oauth.errors import OAuthError
from proxy.oauth.once import take_once
from proxy.oauth.services import Services


async def offer(svc: Services, choice: PendingChoice) -> str:
    """Keep the request until the user picks (``lifetimes.transaction``); its id."""
    pick_id = new_value()
    await svc.store.upsert(
        PendingChoice.kind, pick_id, choice.to_json(), svc.config.lifetimes.transaction
    )
    return pick_id


async def take(svc: Services, pick_id: str | None, *, native: bool) -> PendingChoice:
    """The request behind ``pick_id``, consumed. Refused: an unknown or expired id, one
    already picked, and a browser choice answered through the browser-less endpoint (or
    the other way round; the choice is used up all the same)."""
    choice = PendingChoice.from_json(await take_once(
        svc, PendingChoice.kind, pick_id, marker_ttl=None,
        unknown=OAuthError("invalid_request", "this choice is unknown or has expired; start again"),
        used=OAuthError("invalid_request", "this choice was already made; start again")))
    if choice.native != native:
        raise OAuthError("invalid_request", "this choice is unknown or has expired; start again")
    return choice
