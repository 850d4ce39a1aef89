"""Starting a login, whichever door it came in by.

``check_request`` checks an authorization request (sent, or pushed per RFC 9126),
keeping only the parameters the proxy reads;
``begin`` routes it by ``acr_values`` and takes the first step toward the bank,
falling back to another bank when App2App cannot start; ``answer`` turns that
step into a browser response or a browser-less JSON action. /authorize,
/native/authorize and the bank picker all go through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from federation.protocol import BankError, StartRequest, is_decoupled, is_redirect, is_session
from federation.routing import bank_choices, pick_bank
from federation.settings import BankSettings
from proxy.config.settings import ClientSettings
from proxy.login import browser, decoupled, picker, sessions
from proxy.login.hints import check_hint_form, check_may_name_user, count_login
from proxy.login.transactions import stored
from proxy.model.records import PendingChoice, Transaction
from proxy.model.tokens import new_value
from proxy.oauth import rar
from proxy.oauth.authorize_checks import (
    REDIRECTED_CHECKS,
    check_client,
    check_native_callback_uri,
    check_redirect_uri,
    check_resource_known,
    check_state_length,
    known_parameters,
    pass_through_names,
)
from proxy.oauth.errors import OAuthError, RedirectTarget
from proxy.oauth.par import AuthorizationRequest, resolve
from proxy.oauth.services import Services
from proxy.observability import audit, metrics
from proxy.observability.logs import bind_context, logger
from proxy.observability.tracing import current_traceparent
from proxy.web import pages
from proxy.web.errors import next_step
from proxy.web.responses import json_response

log = logger("proxy.login")


@dataclass(frozen=True)
class LoginRequest:
    """An authorization request that passed every check."""

    client: ClientSettings
    params: dict[str, str]  # the known parameters (PARAMETER_LIMITS), each bounded
    target: RedirectTarget  # .native: it came through /native/authorize
    pushed: bool = False  # through /par (RFC 9126)
    authenticated: bool = False  # pushed by a client that authenticated itself

    @property
    def native(self) -> bool:
        return self.target.native


@dataclass(frozen=True)
class Step:
    """Where the user agent goes next."""

    url: str
    bank: BankSettings
    # True: a universal link into the bank's app (a browser-less client gets
    # ``deep_link``); False: a URL the client follows or calls itself
    open_app: bool
    # the key of the login's transaction (the state toward the bank, a decoupled
    # login's handle, or the state a session bank's broker chose)
    txn: str = ""
    # a session bank's login: where a browser-less app reads its progress meanwhile
    status_uri: str | None = None


@dataclass(frozen=True)
class Choice:
    """The request names no bank: the user picks one of ``options``."""

    pick_id: str
    options: list[tuple[BankSettings, str]]


def callback_uri(svc: Services, bank_id: str) -> str:
    """One callback per bank: a response for one bank arriving at another's callback
    is a mix-up (RFC 9700 §4.4.2)."""
    return f"{svc.issuer}/callback/{bank_id}"


async def check_request(
    svc: Services, raw: Mapping[str, str], *, native: bool, pushed: bool = False
) -> LoginRequest:
    return check(svc, await resolve(svc, raw), native=native)


def check(svc: Services, request: AuthorizationRequest, *, native: bool) -> LoginRequest:
    """Check a request as sent, as pushed, or as kept for the picker (checked again: the
    config may have changed meanwhile)."""
    params = known_parameters(request.params, pass_through_names(svc.config.banks))
    client = check_client(svc.clients.get(params.get("client_id")), params)
    bind_context(client_id=client.client_id)
    try:
        redirect_uri = check_redirect_uri(client, params)
        if native:
            # before any redirect: an unregistered native_callback_uri is the caller's
            # error, answered with 400 JSON, never sent on to an app
            check_native_callback_uri(client, params)
        check_state_length(params)
    except OAuthError as err:
        err.client_id = client.client_id  # its page links back to the client's home
        raise
    target = RedirectTarget(redirect_uri, params.get("state"), svc.issuer, native=native)
    if client.profile == "fapi2" and not request.pushed:
        # FAPI 2.0 Security Profile §5.3.2.2: the authorization server "shall require
        # pushed authorization requests"; RFC 9126 §4: such a server "will refuse, using
        # the invalid_request error code, to process any request to the authorization
        # endpoint that does not have a request_uri parameter with a value obtained from
        # the PAR endpoint."
        raise OAuthError(
            "invalid_request", "this client must push its request to /par", redirect=target
        )
    try:
        for check in REDIRECTED_CHECKS:
            check(client, params)
        check_resource_known(svc.config.resource_servers, params)
        rar.check_request(svc.config, client, params)
    except OAuthError as err:
        err.redirect = err.redirect or target
        raise
    return LoginRequest(client, params, target, request.pushed, request.authenticated)


async def begin(
    svc: Services, login: LoginRequest, *, chosen_bank: str | None = None
) -> Step | Choice:
    """Route the login and start it at the bank (or ask the user which bank)."""
    client = login.client
    if chosen_bank is not None:
        offered = {bank.id: (bank, acr) for bank, acr in _choices(svc, client)}
        if chosen_bank not in offered:
            raise OAuthError("invalid_request", "choose one of the banks offered")
        bank, acr = offered[chosen_bank]
        return await _start_with_fallback(svc, login, bank, acr)
    requested = login.params.get("acr_values", "").split()
    picked = pick_bank(requested, client.acr_values, client.default_acr, svc.config.banks)
    if picked is not None:
        return await _start_with_fallback(svc, login, *picked)
    options = _choices(svc, client)
    if len(options) < 2:
        raise OAuthError("invalid_request", "no bank this client may use matches acr_values")
    pick_id = await picker.offer(svc, PendingChoice(
        params=login.params, native=login.native, pushed=login.pushed,
        authenticated=login.authenticated,
    ))  # fmt: skip
    return Choice(pick_id, options)


async def picked(svc: Services, pick_id: str | None, *, native: bool) -> LoginRequest:
    """The request behind a pending choice, taken once (:mod:`proxy.login.picker`) and
    checked again."""
    choice = await picker.take(svc, pick_id, native=native)
    request = AuthorizationRequest(choice.params, choice.pushed, choice.authenticated)
    return check(svc, request, native=native)


def _choices(svc: Services, client: ClientSettings) -> list[tuple[BankSettings, str]]:
    return bank_choices(client.acr_values, svc.config.banks)


async def _start_with_fallback(
    svc: Services, login: LoginRequest, bank: BankSettings, acr: str
) -> Step:
    """Start at ``bank``. When that fails at the bank (it refuses the device or the user,
    or answers an error) and the bank, else the client, names a ``fallback_acr`` the
    client may use, the login continues at that bank instead; the tokens' ``acr`` and
    ``authentication_level`` then say which bank it was."""
    try:
        return await _start(svc, login, bank, acr)
    except BankError as exc:
        # a bank that cannot take the request's authorization_details is no failure of
        # App2App: the login is refused as it is, not sent elsewhere
        fallback = None if exc.error == rar.ERROR else _fallback(svc, login.client, bank)
        if fallback is None:
            raise _bank_failure(svc, login, bank, exc) from exc
        log.warning(
            "fallback_taken", from_bank=bank.id, to_bank=fallback[0].id, error=exc.error,
            detail=exc.detail,
        )  # fmt: skip
        metrics.series(metrics.LOGIN_FALLBACKS, bank.id, fallback[0].id,
                       metrics.error_code(exc.error)).inc()
    try:
        return await _start(svc, login, *fallback)
    except BankError as exc:
        raise _bank_failure(svc, login, fallback[0], exc) from exc


def _bank_failure(
    svc: Services, login: LoginRequest, bank: BankSettings, exc: BankError
) -> OAuthError:
    decoupled_bank = is_decoupled(svc.adapters.get(bank.id))
    facts = audit.LoginFacts(bank.id, login.client.client_id, decoupled_bank, login.native)
    audit.login_failed(facts, exc.error, "start")
    return OAuthError(exc.error, exc.description, detail=exc.detail)


def _fallback(
    svc: Services, client: ClientSettings, failed: BankSettings
) -> tuple[BankSettings, str] | None:
    for acr in (failed.fallback_acr, client.fallback_acr):
        if acr is None or (client.acr_values is not None and acr not in client.acr_values):
            continue
        bank = next((b for b in svc.config.banks if acr in b.acr_values), None)
        if bank is not None and bank.id != failed.id:
            return bank, acr
    return None


async def _start(svc: Services, login: LoginRequest, bank: BankSettings, acr: str) -> Step:
    bind_context(bank_id=bank.id)
    if login.native and not bank.native:
        # draft-zehavi-oauth-app2app-browserless §3.5.4: an error the server "cannot/or
        # must not send to its OAuth client" is a 4xx with a JSON body;
        # native_app2app_unsupported tells the app to use the browser flow instead.
        raise OAuthError(
            "native_app2app_unsupported",
            f"{bank.display_name} cannot be used without a browser; use the browser flow",
        )
    adapter = svc.adapters[bank.id]
    params = login.params
    details = rar.requested(params)
    if details and bank.kind == "session":
        # RFC 9396 §5; a session broker's API has no place for them
        raise OAuthError(rar.ERROR, f"{bank.display_name} cannot take these "
                         "authorization_details")  # fmt: skip
    if is_decoupled(adapter):
        # CIBA §7.1 trusts the initiator to name the user because it authenticated:
        # proxy.login.hints; the refusals come before the bank is called
        check_may_name_user(params, authenticated=login.authenticated)
        check_hint_form(bank, params)
        await count_login(svc, bank.id, params)
        txn = _transaction(login, bank, acr)
        handle, deep_link = await decoupled.start(svc, adapter, txn, params)
        resume = decoupled.resume_uri(svc, handle)
        return Step(deep_link or resume, bank, open_app=deep_link is not None, txn=handle)
    assert is_redirect(adapter)  # an adapter is one or the other (federation.registry)
    state = new_value()
    start = await adapter.start(
        StartRequest(
            state,
            callback_uri(svc, bank.id),
            params.get("login_hint"),
            native_callback_uri=params.get("native_callback_uri") if login.native else None,
            authorization_details=details,
        )
    )
    txn = _transaction(login, bank, acr, conn_data=dict(start.conn_data))
    if start.state is not None and is_session(adapter):
        # a session bank: its broker chose the state the eID app brings back
        watched = await sessions.keep(svc, adapter, txn, start.state)
        audit.login_started(audit.LoginFacts.of(txn))
        status_uri = sessions.status_uri(svc, watched) if watched is not None else None
        return Step(start.url, bank, open_app=True, txn=start.state, status_uri=status_uri)
    await svc.store.upsert(Transaction.kind, state, stored(svc, txn),
                           svc.config.lifetimes.transaction)
    audit.login_started(audit.LoginFacts.of(txn))
    return Step(start.url, bank, open_app=not start.native, txn=state)


def _transaction(
    login: LoginRequest, bank: BankSettings, acr: str, *, conn_data: dict[str, Any] | None = None
) -> Transaction:
    params = login.params
    return Transaction(
        client_id=login.client.client_id,
        redirect_uri=login.target.redirect_uri,
        state=login.target.state,
        nonce=params.get("nonce"),
        code_challenge=params["code_challenge"],
        scope=tuple(dict.fromkeys(params["scope"].split())),
        acr=acr,
        bank_id=bank.id,
        conn_data=dict(conn_data or {}),
        native=login.native,
        # RFC 8707 §2.1: "If the client omits the resource parameter when requesting
        # authorization, the authorization server MAY process the request with no specific
        # resource or by using a predefined default resource value."
        resource=params.get("resource", login.client.default_resource),
        dpop_jkt=params.get("dpop_jkt"),
        authorization_details=rar.requested(params) or None,
        # traces on: the login's later requests continue this request's trace
        trace=current_traceparent(),
    )


async def answer(svc: Services, login: LoginRequest, step: Step | Choice) -> web.Response:
    """The response that takes the user agent there. A page of the proxy is reached by a
    303 to its own URL (proxy.login.browser): reloading it never starts anything."""
    if isinstance(step, Choice):
        if login.native:
            return json_response(
                _prompt(svc, step), headers={"Cache-Control": "no-store"}
            )
        return browser.see_other(browser.picker_url(svc, step.pick_id))
    if step.open_app and step.bank.interstitial and not login.native:
        # iOS opens a universal link in its app only on a user gesture: one tap here
        decoupled_bank = is_decoupled(svc.adapters.get(step.bank.id))
        return await browser.show_interstitial(
            svc, bank_id=step.bank.id, client_id=login.client.client_id, url=step.url,
            txn=step.txn,
            binding_message=login.params.get("binding_message") if decoupled_bank else None,
        )
    return next_step(step.url, native=login.native, open_app=step.open_app,
                     status_uri=step.status_uri)


async def picker_page(svc: Services, pick_id: str) -> web.Response:
    """GET /authorize/pick/{pick_id}: the banks to choose from while the choice is open
    (read, not taken: a reload shows the same page); afterwards, the choice made."""
    choice = await browser.open_choice(svc, pick_id)
    client = svc.clients.get(choice.params.get("client_id")) if choice is not None else None
    if choice is None or choice.native or client is None:
        return await browser.chosen_page(svc, pick_id)
    return pages.bank_picker([
        pages.Option(pick_url(svc, pick_id, bank.id), bank.display_name, bank.description)
        for bank, _ in _choices(svc, client)
    ], client.client_name)  # fmt: skip


def pick_url(svc: Services, pick_id: str, bank_id: str) -> str:
    """The picker's link for one bank (GET /authorize/pick/{pick_id}/{bank_id}): a plain
    link, no form, so the redirect to the bank that answers it is a navigation that
    CSP's form-action never sees (docs/security.md, "The bank picker")."""
    return f"{svc.issuer}/authorize/pick/{pick_id}/{bank_id}"


def _prompt(svc: Services, choice: Choice) -> dict[str, object]:
    """draft-zehavi-oauth-app2app-browserless §3.5.3, the routing response: one option
    list; the app posts ``id`` and ``bank`` to ``response.post``."""
    return {
        "action": "prompt",
        "id": choice.pick_id,
        "userPrompt": {
            "options": {
                "bank": {
                    "title": "Bank",
                    "description": "Choose your bank",
                    "values": {bank.id: {"name": bank.display_name} for bank, _ in choice.options},
                }
            }
        },
        "response": {"post": f"{svc.issuer}/native/authorize/pick"},
    }
