"""Who may name the user to a decoupled bank, and how often.

A decoupled bank (CIBA, BankID's app-authorize) reaches the user on their own
device: it pushes to the phone of whoever ``login_hint`` (or
``login_hint_token``) names, showing ``binding_message``; whoever started the
login receives the code. CIBA §7.1 lets the initiator name the user because the
initiator is a client that authenticated itself at the backchannel endpoint.
Here the same holds: only a confidential client's pushed request (/par, RFC 9126)
may name the user; a bare front-channel request, which anyone can send with a
public client's id, may not (docs/security.md, "Who may name the user").

And however authenticated, one user is asked at most ``login_hint_limit.logins``
times per ``login_hint_limit.window`` seconds at one bank: a counter in the store
per (bank, hint), shared by every instance; the store keeps only the SHA-256 of
its id, so the hint itself is never in a key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from federation.settings import BankSettings
from proxy.oauth.errors import OAuthError
from proxy.oauth.services import Services
from proxy.observability.logs import logger
from proxy.observability.metrics import RATE_LIMITED, series

log = logger("proxy.login")

# the parameters that name the user to a decoupled bank, or speak to them on its app
NAMING_PARAMETERS = ("login_hint", "login_hint_token", "binding_message")
HINTS = ("login_hint", "login_hint_token")
COUNTER_KIND = "hint"


def check_may_name_user(params: Mapping[str, str], *, authenticated: bool) -> None:
    """Refused before the bank is called: a request that names its user to a decoupled
    bank and did not come from an authenticated client's push."""
    if not authenticated and any(name in params for name in NAMING_PARAMETERS):
        raise OAuthError(
            "invalid_request",
            "login_hint, login_hint_token and binding_message reach a decoupled bank only "
            "in a request pushed to /par by a confidential client",
        )


# a Norwegian national identity number (fødselsnummer): 11 digits
_NNIN = re.compile(r"[0-9]{11}")


def check_hint_form(bank: BankSettings, params: Mapping[str, str]) -> None:
    """A bank that registers its logins as permissions (BankID) takes the user as
    ``login_hint`` in its scheme and writes the ``login_hint_token`` (the permission's
    token) itself; what the user approves is the permission, not a ``binding_message``.
    Refused before the bank is called."""
    permissions = bank.permissions
    if permissions is None:
        return
    if "login_hint_token" in params or "binding_message" in params:
        raise OAuthError("invalid_request", "this bank takes login_hint (and "
                         "authorization_details), not login_hint_token or binding_message")
    hint = params.get("login_hint")
    if hint is not None and permissions.login_hint_scheme == "nnin" and not _NNIN.fullmatch(hint):
        raise OAuthError("invalid_request", "login_hint must be the user's national identity "
                         "number (11 digits) at this bank")  # fmt: skip


async def count_login(svc: Services, bank_id: str, params: Mapping[str, str]) -> None:
    """One more login for each hint the request names; refused over the limit."""
    limit = svc.config.login_hint_limit
    for name in HINTS:
        value = params.get(name)
        if value is None:
            continue
        count, reset_in = await svc.store.hit(COUNTER_KIND, f"{bank_id} {name} {value}",
                                              limit.window)  # fmt: skip
        if count > limit.logins:
            series(RATE_LIMITED, "authorize", name).inc()
            log.warning("login_hint_limit_reached", hint=name, count=count,
                        limit=limit.logins, window=limit.window)  # fmt: skip
            # RFC 6749 §4.1.2.1, temporarily_unavailable: "The authorization server is
            # currently unable to handle the request due to a temporary overloading or
            # maintenance of the server." (as the rate limits answer)
            raise OAuthError(
                "temporarily_unavailable",
                "too many logins for this user at this bank; retry later",
                detail=f"{name} limit reached: {count} > {limit.logins} in {limit.window}s, "
                f"resets in {reset_in}s",
            )
