"""The pages of a browser login, each at a URL of its own that shows the same login
however often it is reloaded or come back to with Back, and never starts another
(post/redirect/get: the request that starts something answers 303 See Other to it).

- ``GET /authorize/pick/{pick_id}``: the bank picker. Once a bank is chosen, the same
  URL shows that choice and a link on to the login it started (kept as a
  :class:`~proxy.model.records.ChosenBank` under the choice's id).
- ``GET /authorize/continue/{handle}``: the one-tap interstitial before a bank app's
  link (a :class:`~proxy.model.records.LoginPage`); for a decoupled bank with the code
  to compare (``binding_message``) and a link to its waiting page, ``/resume/{handle}``.

Once the login's transaction is gone (completed, cancelled or expired), both say the
login has ended and link back to the client's ``client_uri``. Records are written only
when a page is shown: a login that goes straight to the bank costs no extra write.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from federation.protocol import is_decoupled
from proxy.model.records import ChosenBank, LoginPage, PendingChoice, Transaction
from proxy.model.tokens import new_value
from proxy.oauth.errors import OAuthError
from proxy.oauth.services import Services
from proxy.web import pages
from proxy.web.errors import back_to

EXPIRED = "this login is unknown or has expired; start again"


def picker_url(svc: Services, pick_id: str) -> str:
    return f"{svc.issuer}/authorize/pick/{pick_id}"


def continue_url(svc: Services, handle: str) -> str:
    return f"{svc.issuer}/authorize/continue/{handle}"


def see_other(url: str) -> web.Response:
    """RFC 9110 §15.4.4: 303 "redirect[s] the user agent to a different resource ...
    intended to provide an indirect response to the original request"; the browser
    GETs it, so a reload or Back repeats the GET, never the request that started the
    login."""
    return web.Response(status=303, headers={"Location": url, "Cache-Control": "no-store"})


def _lifetime(svc: Services) -> int:
    return svc.config.lifetimes.transaction


async def show_interstitial(
    svc: Services, *, bank_id: str, client_id: str, url: str, txn: str,
    binding_message: str | None,
) -> web.Response:
    """Keep the interstitial of a login that was just started; 303 to its page."""
    handle = new_value()
    record = LoginPage(bank_id, client_id, svc.cipher.encrypt({"url": url, "txn": txn}),
                       binding_message)
    await svc.store.upsert(LoginPage.kind, handle, record.to_json(), _lifetime(svc))
    return see_other(continue_url(svc, handle))


async def remember_choice(
    svc: Services, pick_id: str, *, bank_id: str, client_id: str, answer: web.Response,
    txn: str,
) -> None:
    """The picker's choice started a login: its picker page links on to it from now on."""
    url = answer.headers.get("Location")
    if url is None:
        return
    record = ChosenBank(bank_id, client_id, svc.cipher.encrypt({"url": url, "txn": txn}))
    await svc.store.upsert(ChosenBank.kind, pick_id, record.to_json(), _lifetime(svc))


async def _unsealed(svc: Services, record: LoginPage) -> tuple[str | None, dict[str, Any]]:
    """The URL the login goes on at, or None once its transaction is gone; the rest."""
    sealed = svc.cipher.decrypt(record.sealed)
    if await svc.store.find(Transaction.kind, str(sealed["txn"])) is None:
        return None, sealed
    return str(sealed["url"]), sealed


def _bank_name(svc: Services, bank_id: str) -> str:
    bank = svc.bank(bank_id)
    return bank.display_name if bank is not None else bank_id


async def chosen_page(svc: Services, pick_id: str) -> web.Response:
    """GET /authorize/pick/{pick_id} once the choice was made: that choice, and a link on
    to its login while it goes on."""
    data = await svc.store.find(ChosenBank.kind, pick_id)
    if data is None:
        raise OAuthError("invalid_request", EXPIRED)
    record = ChosenBank.from_json(data)
    url, _ = await _unsealed(svc, record)
    return pages.chosen(_bank_name(svc, record.bank_id), url, back_to(svc, record.client_id))


async def open_choice(svc: Services, pick_id: str) -> PendingChoice | None:
    """The pending choice, read without taking it (the picker page), or None."""
    data = await svc.store.find(PendingChoice.kind, pick_id)
    return PendingChoice.from_json(data) if data is not None else None


async def continue_page(svc: Services, handle: str) -> web.Response:
    """GET /authorize/continue/{handle}: the interstitial, the same on every reload."""
    data = await svc.store.find(LoginPage.kind, handle)
    if data is None:
        raise OAuthError("invalid_request", EXPIRED)
    record = LoginPage.from_json(data)
    name = _bank_name(svc, record.bank_id)
    back = back_to(svc, record.client_id)
    url, sealed = await _unsealed(svc, record)
    if url is None:
        return pages.ended(name, back)
    waiting = None
    if is_decoupled(svc.adapters.get(record.bank_id)):
        waiting = f"{svc.issuer}/resume/{sealed['txn']}"
    return pages.interstitial(name, url, binding_message=record.binding_message,
                              waiting_url=waiting)
