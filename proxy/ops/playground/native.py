"""The browser-less flow (draft-zehavi-oauth-app2app-browserless), one step per button:
the merchant app drives every step itself and every answer of the proxy is JSON.

1. the backend pushes the request to /par (it names the user for a decoupled bank);
2. the app posts the ``request_uri`` to /native/authorize: a ``prompt`` to choose a
   bank (or, for a request that names one, a ``deep_link``);
3. the app posts the choice: a ``deep_link`` into the bank's app;
4. in the bank's app the user approves (the playground taps Approve for them), and the
   bank's app opens a URL of the proxy (/callback, or /resume), which the merchant app
   claims (AASA / assetlinks);
5. the app calls that URL asking for JSON: a ``call`` to its own redirect URI with the
   code (a decoupled bank still pending: a ``call`` to /resume again);
6. the backend redeems the code at /token.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from proxy.ops.playground.backend import APP, Backend, Decoded
from proxy.ops.playground.html import as_json, button_form, esc, page, see_other
from proxy.ops.playground.trace import Hop

if TYPE_CHECKING:
    from proxy.ops.playground.app import Playground

BANK_APP = "the bank's app (the playground taps Approve)"
_FORM = re.compile(r'<form method="post" action="([^"]+)">(.*?)</form>', re.S)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass
class Run:
    id: str
    state: str
    verifier: str
    nonce: str
    redirect_uri: str
    started: float = field(default_factory=time.time)
    steps: list[Hop] = field(default_factory=list)
    next: str = "authorize"  # authorize | choose | bank_app | call | token | done | failed
    url: str = ""  # the URL the next step uses
    prompt_id: str = ""
    options: dict[str, str] = field(default_factory=dict)  # bank id -> name
    id_token: Decoded | None = None


def add_routes(app: web.Application, play: Playground) -> None:
    async def intro(request: web.Request) -> web.StreamResponse:
        return page("The browser-less flow, step by step", _INTRO + '<div class="actions">'
                    + button_form("/native", "Start: the backend pushes the request")
                    + "</div>")

    async def start(request: web.Request) -> web.StreamResponse:
        run = Run(secrets.token_urlsafe(16), secrets.token_urlsafe(16),
                  secrets.token_urlsafe(48), secrets.token_urlsafe(16), play.redirect_uri)
        play.runs[run.id] = run
        await _push(play, play.backend(request), run)
        return see_other(f"/native/{run.id}")

    async def show(request: web.Request) -> web.StreamResponse:
        run = play.runs.get(request.match_info["run_id"])
        if run is None:
            return page("This run is not known here", '<p><a href="/native">Start again</a></p>',
                        status=404)
        return _page(run)

    async def step(request: web.Request) -> web.StreamResponse:
        run = play.runs.get(request.match_info["run_id"])
        if run is None:
            return see_other("/native")
        form = await request.post()
        await _advance(play, play.backend(request), run, str(form.get("bank", "")))
        return see_other(f"/native/{run.id}#step-{len(run.steps)}")

    app.router.add_get("/native", intro)
    app.router.add_post("/native", start)
    app.router.add_get("/native/{run_id}", show)
    app.router.add_post("/native/{run_id}/next", step)


_INTRO = """<p>An app that logs its user in through their bank's app needs no browser:
it asks the proxy for the next step and gets JSON back (draft-zehavi-oauth-app2app-browserless).
Each button below is one step; every request and answer is shown.</p>"""


async def _push(play: Playground, backend: Backend, run: Run) -> None:
    client = play.client
    form = {
        "response_type": "code", "client_id": client.client_id,
        "redirect_uri": play.redirect_uri, "scope": " ".join(client.scopes),
        "state": run.state, "nonce": run.nonce, "login_hint": "alice@sandbox.example",
        "binding_message": "NATIVE-1",
        "code_challenge": create_s256_code_challenge(run.verifier),
        "code_challenge_method": "S256",
    }
    status, pushed = await backend.call(run.steps, "POST", "/par", form, auth=backend.basic,
                                        note="the backend pushes the request (RFC 9126)")
    if status != 201 or not isinstance(pushed, dict):
        run.next = "failed"
        return
    run.url = str(pushed["request_uri"])


async def _advance(play: Playground, backend: Backend, run: Run, bank: str) -> None:
    client = play.client
    if run.next == "authorize":
        native_callback = client.native_callback_uris[0]
        status, body = await backend.call(
            run.steps, "POST", "/native/authorize", who=APP,
            form={"client_id": client.client_id, "request_uri": run.url,
                  "native_callback_uri": native_callback},
            note="the app asks the native authorization endpoint for the next step")
        _follow(run, status, body)
    elif run.next == "choose" and bank in run.options:
        status, body = await backend.call(
            run.steps, "POST", "/native/authorize/pick", {"id": run.prompt_id, "bank": bank},
            who=APP, note="the app posts the user's choice")
        _follow(run, status, body)
    elif run.next == "bank_app":
        await _bank_app(backend, run)
    elif run.next == "call":
        status, body = await backend.call(
            run.steps, "GET", run.url, who=APP, accept="application/json",
            note="the app calls the URL the bank's app opened, asking for JSON")
        _follow(run, status, body)
    elif run.next == "token":
        code = parse_qs(urlsplit(run.url).query).get("code", [""])[0]
        status, tokens = await backend.call(
            run.steps, "POST", "/token", auth=backend.basic,
            form={"grant_type": "authorization_code", "code": code,
                  "redirect_uri": play.redirect_uri, "code_verifier": run.verifier},
            note="the backend redeems the code")
        if status == 200 and isinstance(tokens, dict):
            run.id_token = await backend.decode(tokens["id_token"], client.client_id)
            run.next = "done"
        else:
            run.next = "failed"


def _follow(run: Run, status: int, body: Any) -> None:
    """Where a JSON action of the proxy leads."""
    if status != 200 or not isinstance(body, dict):
        run.next = "failed"
        return
    action = body.get("action")
    if action == "prompt":
        run.prompt_id = str(body["id"])
        values = body["userPrompt"]["options"]["bank"]["values"]
        run.options = {bank: str(v["name"]) for bank, v in values.items()}
        run.next = "choose"
    elif action == "deep_link":
        run.url, run.next = str(body["url"]), "bank_app"
    elif action == "call":
        run.url = str(body["url"])
        if not run.url.startswith(run.redirect_uri):
            run.next = "call"  # a decoupled bank still pending: /resume again
        else:
            run.next = "token" if "code" in parse_qs(urlsplit(run.url).query) else "failed"
    else:
        run.next = "failed"


async def _bank_app(backend: Backend, run: Run) -> None:
    """The user in the bank's app: its page, then Approve; it opens the proxy's URL."""
    hop = Hop(BANK_APP, "GET", run.url.split("?")[0], {},
              note="the bank's app opens the deep link and shows its question")
    run.steps.append(hop)
    async with backend.http.get(run.url, allow_redirects=False) as resp:
        hop.status = resp.status
        text = await resp.text()
    found = _FORM.search(text)
    if found is None:
        hop.answer = "no Approve button on this page"
        run.next = "failed"
        return
    action = html.unescape(found.group(1))
    form = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(found.group(2))}
    form["decision"] = "approve"
    tap = Hop(BANK_APP, "POST", action, {"decision": "approve"},
              note="the user taps Approve; the bank's app opens the proxy's URL")
    run.steps.append(tap)
    try:
        async with backend.http.post(action, data=form, allow_redirects=False) as resp:
            tap.status = resp.status
            location = resp.headers.get("Location", "")
    except aiohttp.ClientError as exc:
        tap.answer, run.next = f"the bank's app failed: {exc}", "failed"
        return
    tap.answer = {"opens": location}
    run.url, run.next = location, ("call" if location else "failed")


_NEXT = {
    "authorize": "Next: ask the proxy for the next step",
    "bank_app": "Next: approve in the bank's app",
    "call": "Next: call the URL the bank's app opened",
    "token": "Next: redeem the code",
}


def _page(run: Run) -> web.Response:
    steps = "".join(
        f'<li id="step-{i}"><p class="hop-title">{esc(h.method)} <code>{esc(h.url)}</code>'
        + (f" → {h.status}" if h.status is not None else "")
        + f' <span class="who">({esc(h.who)})</span></p>'
        + (f"<p><small>{esc(h.note)}</small></p>" if h.note else "")
        + (as_json(h.params) if h.params else "")
        + (as_json(h.answer) if isinstance(h.answer, (dict, list))
           else f"<p>{esc(h.answer)}</p>" if h.answer else "")
        + "</li>"
        for i, h in enumerate(run.steps, start=1)
    )
    action = f"/native/{run.id}/next"
    if run.next == "choose":
        buttons = "".join(
            f'<form method="post" action="{esc(action)}"><input type="hidden" name="bank" '
            f'value="{esc(bank)}"><button class="button" type="submit">Next: choose '
            f"{esc(name)}</button></form>"
            for bank, name in run.options.items()
        )
    elif run.next in _NEXT:
        buttons = button_form(action, _NEXT[run.next])
    elif run.next == "done":
        buttons = '<a class="button" href="/native">Start again</a>'
    else:
        buttons = ('<p class="error">The flow stopped: see the last answer.</p>'
                   '<a class="button" href="/native">Start again</a>')
    done = ""
    if run.id_token is not None:
        done = (f"<h2>The ID token</h2><p>{esc(run.id_token.check)}</p>"
                f"{as_json(run.id_token.claims)}")
    body = (_INTRO + f'<ol class="hops">{steps}</ol><div class="actions">{buttons}</div>'
            + done)
    return page("The browser-less flow, step by step", body)
