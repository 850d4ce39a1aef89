"""The playground's pages: the landing page and a login's page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from proxy.config.settings import Config
from proxy.ops.playground.backend import Decoded
from proxy.ops.playground.html import as_json, button_form, esc, masked, page
from proxy.ops.playground.trace import Hop

if TYPE_CHECKING:
    from proxy.config.settings import ClientSettings
    from proxy.ops.playground.app import Login
    from proxy.ops.playground.own_apps import Approval

KINDS = {
    "oidc": ("redirect", "the browser goes to the bank (its app, through a universal "
             "link), which sends the user back to the proxy's /callback with a code"),
    "ciba": ("decoupled", "the proxy asks the bank to push the login to the user's app "
             "(CIBA, with the app's link and a code to compare) and polls until it ends"),
    "session": ("eID session", "the proxy opens a session at a broker's REST API (itsme "
                "through Signicat's headless flow); the eID app returns to /callback"),
}


def landing(config: Config, bank_issuer: str) -> web.Response:
    issuer = config.issuer
    client = config.clients[0]
    banks = "".join(
        f"<li><strong>{esc(b.display_name)}</strong> "
        f"<small>({esc(KINDS[b.kind][0])}: <code>{esc(b.id)}</code>)</small><br>"
        f"{esc(b.description or '')}<br>"
        f'<a class="button" href="/login?acr={esc(b.acr_values[0])}">'
        f"Log in with {esc(b.display_name)} ({esc(KINDS[b.kind][0])})</a></li>"
        for b in config.banks
        if not client.acr_values or set(b.acr_values) & set(client.acr_values)
    )
    pay = next((c for c in config.clients if "payment_initiation"
                in c.authorization_details_types), None)
    payment = "" if pay is None else f"""
<h2>Approve a payment</h2>
<p>Demo Shop's payments client (<code>{esc(pay.client_id)}</code>) pushes a BankID login
with the user's national identity number, their phone and a payment
(<code>authorization_details</code>, RFC 9396); the user approves the payment in the
sandbox's BankID app, and the tokens carry what they approved.</p>
<div class="actions"><a class="button" href="/pay">Pay 123.45 NOK to Scrooge McDuck with
BankID</a></div>"""
    kinds = "".join(f"<dt>{esc(name)}</dt><dd>{esc(text)}</dd>" for name, text in KINDS.values())
    servers = "".join(
        f"<tr><td><code>{esc(rs.client_id)}</code></td><td><code>{esc(rs.client_secret)}"
        f"</code></td><td>{'yes' if rs.receive_bank_token else 'no'}</td></tr>"
        for rs in config.resource_servers if rs.client_secret
    )
    rs = next((r for r in config.resource_servers if r.client_secret), None)
    curl = ""
    if rs is not None:
        curl = as_json_text(
            f"curl -u {rs.client_id}:{rs.client_secret} -d token=a2a_at_… {issuer}/introspect")
    body = f"""
<p>A merchant's mobile app logs its user in through their bank's app. This playground
plays the merchant: press a button, log in as the sandbox's user, and see every hop,
the tokens and what the merchant's APIs see.</p>
<div class="actions">
<a class="button" href="/login">Log in: choose a bank</a>
<a class="button secondary" href="/native">The browser-less flow, step by step</a>
</div>
<h2>The three actors</h2>
<ul class="cards">
<li><strong>Demo Shop</strong> (this app, <code>{esc(client.client_id)}</code>): the merchant's
app and its backend. It speaks plain OpenID Connect (authorization code, PKCE, PAR) to
the proxy, and never talks to a bank.</li>
<li><strong>app2app-proxy</strong> at <code>{esc(issuer)}</code>: the merchant's
authorization server. It routes each login to a bank, finishes the bank's flow, and
mints the merchant's own tokens.</li>
<li><strong>Sandbox Bank</strong> at <code>{esc(bank_issuer)}</code>: a bank's OpenID
Provider and its app (and, beside it, an itsme broker). Its user is Alice Sandbox.</li>
</ul>
<h2>The kinds of login</h2>
<dl class="kinds">{kinds}
<dt>browser-less</dt><dd>the merchant app drives every step itself and gets JSON back
(draft-zehavi-oauth-app2app-browserless)</dd></dl>
<h2>Log in with one bank</h2>
<ul class="cards">{banks}</ul>{payment}
<h2>Look inside</h2>
<ul>
<li><a href="{esc(issuer)}/.well-known/openid-configuration">Discovery document</a>
(OpenID Connect Discovery, RFC 8414)</li>
<li><a href="{esc(issuer)}/jwks">JWKS</a>: the keys that sign ID tokens and JWT
introspection answers</li>
<li>Docs: <a href="/docs/app2app.md">how each kind of login flows</a>,
<a href="/docs/configuration.md">config.yaml</a>, <a href="/docs/security.md">security
rules</a>, <a href="/docs/openapi.yaml">the endpoints (OpenAPI)</a></li>
</ul>
<h2>The demo's credentials</h2>
<p>Fixed values, printed by <code>app2app-proxy demo</code> too, so tokens can be
introspected from a shell (and the user's <code>sub</code> stays the same across
restarts). Never use them outside the demo.</p>
<table><thead><tr><th scope="col">API (resource server)</th><th scope="col">secret</th>
<th scope="col">gets the bank's token</th></tr></thead><tbody>{servers}</tbody></table>
{curl}
"""
    return page("Log in with your bank: the app2app-proxy playground", body)


def as_json_text(text: str) -> str:
    return f"<pre><code>{esc(text)}</code></pre>"


def hop_html(hop: Hop) -> str:
    status = f" → {hop.status}" if hop.status is not None else ""
    answer = ""
    if hop.answer is not None:
        answer = (as_json(hop.answer) if isinstance(hop.answer, (dict, list))
                  else f"<p>{esc(str(hop.answer)[:300])}</p>")
    note = f"<p><small>{esc(hop.note)}</small></p>" if hop.note else ""
    params = as_json(hop.params) if hop.params else ""
    return (f'<li><p class="hop-title">{esc(hop.method)} <code>{esc(hop.url)}</code>{status} '
            f'<span class="who">({esc(hop.who)})</span></p>{note}{params}{answer}</li>')


def decoded(jwt: Decoded) -> str:
    return (f"<p>{esc(jwt.check)}</p><h3>Header</h3>{as_json(jwt.header)}"
            f"<h3>Claims</h3>{as_json(jwt.claims)}")


def result(config: Config, login: Login) -> web.Response:
    parts: list[str] = []
    callback = login.callback
    if "error" in callback:
        title = "The login did not complete"
        parts.append(f'<div class="error"><p>The proxy sent Demo Shop back with an error: '
                     f"<code>{esc(callback['error'])}</code>.</p>"
                     f"{as_json(masked(callback))}</div>")
    elif login.tokens is None:
        title = "The login did not complete"
        parts.append("<p>The code could not be redeemed: see the hops below.</p>")
    else:
        claims = login.id_token.claims if login.id_token else {}
        title = f"Logged in as {claims.get('name', claims.get('sub', 'someone'))}"
        parts.append(
            f"<p>Through <strong>{esc(_bank_name(config, claims))}</strong>: "
            f"<code>sub</code> <code>{esc(claims.get('sub'))}</code>, "
            f"<code>acr</code> <code>{esc(claims.get('acr'))}</code>.</p>")
    parts.append('<div class="actions"><a class="button" href="/">Start again</a></div>')
    parts.append("<h2>The hops, in order</h2><p>Every request of this login: Demo Shop's "
                 "calls, the browser's visits to the proxy and the bank, and the proxy's "
                 "calls to the bank. Secrets are masked, tokens and codes shortened.</p>"
                 '<ol class="hops">' + "".join(hop_html(h) for h in login.trail) + "</ol>")
    if login.tokens is not None:
        if login.id_token is not None:
            parts.append(f"<h2>The ID token</h2>{decoded(login.id_token)}")
        parts.append(f"<h2>The token response</h2>{as_json(masked(login.tokens))}")
        parts.append(f"<h2>Userinfo</h2>{as_json(login.userinfo)}")
        parts.append('<h2 id="after">What each API sees (introspection, RFC 7662)</h2>'
                     "<p>Each button calls the proxy as Demo Shop's backend, then "
                     "introspects the access token again as each API.</p>")
        base = f"/logins/{login.id}"
        parts.append('<div class="actions">'
                     + button_form(f"{base}/refresh", "Refresh the tokens")
                     + button_form(f"{base}/revoke", "Revoke the grant", secondary=True)
                     + button_form(f"{base}/introspect", "Introspect again", secondary=True)
                     + "</div>")
        second = next((c for c in config.clients if c.client_id in
                       config.clients[0].approve_for), None)
        if second is not None and "refresh_token" in login.tokens:
            name = second.client_name or second.client_id
            parts.append(f"<h2>The merchant's second app</h2><p>{esc(name)} "
                         "(<code>" + esc(second.client_id) + "</code>) logs in through this "
                         "login, on the same device, without the bank: Demo Shop approves "
                         "with the device key it bound at its code exchange.</p>"
                         f'<div class="actions"><a class="button" href="{base}/second-app">'
                         f"Log in to {esc(name)} through Demo Shop</a></div>")
        for rs, body, as_jwt in login.introspection:
            bank = "with" if rs.receive_bank_token else "without"
            parts.append(f"<h3><code>{esc(rs.client_id)}</code> ({bank} the bank's token)"
                         f"</h3>{as_json(masked(body) if isinstance(body, dict) else body)}")
            if as_jwt is not None:
                parts.append(f"<h3><code>{esc(rs.client_id)}</code>, the RFC 9701 form "
                             f"(a signed JWT)</h3>{decoded(as_jwt)}")
        if login.events:
            parts.append("<h3>What the buttons did</h3><ol class=\"hops\">"
                         + "".join(hop_html(h) for h in login.events) + "</ol>")
    return page(title, "\n".join(parts))


def second_app_result(second: ClientSettings, approval: Approval) -> web.Response:
    """What the merchant's second app got through Demo Shop's login (proxy.ops.playground.
    own_apps)."""
    name = second.client_name or second.client_id
    parts: list[str] = []
    if approval.tokens is None:
        title = f"{name} could not log in through Demo Shop"
        error = approval.error
        shown = masked(error) if isinstance(error, dict) else error
        parts.append(f'<div class="error">{as_json(shown)}</div>')
    else:
        claims = approval.id_token.claims if approval.id_token else {}
        title = f"{name}: logged in through Demo Shop"
        parts.append("<p>No bank was asked: the ID token keeps the bank login's "
                     f"<code>acr</code> <code>{esc(claims.get('acr'))}</code> and "
                     f"<code>auth_time</code>, and its <code>amr</code> "
                     f"<code>{esc(claims.get('amr'))}</code> says how it came.</p>")
        if approval.id_token is not None:
            parts.append(f"<h2>{esc(name)}'s ID token</h2>{decoded(approval.id_token)}")
        parts.append(f"<h2>Userinfo</h2>{as_json(approval.userinfo)}")
    parts.append("<h2>The hops, in order</h2><ol class=\"hops\">"
                 + "".join(hop_html(h) for h in approval.hops) + "</ol>")
    back = f"/logins/{esc(approval.login_id)}"
    parts.append(f'<div class="actions"><a class="button" href="{back}">'
                 "Back to Demo Shop's login</a></div>")
    return page(title, "\n".join(parts))


def _bank_name(config: Config, claims: dict[str, Any]) -> str:
    acr = claims.get("acr")
    bank = next((b for b in config.banks if acr in b.acr_values), None)
    return bank.display_name if bank is not None else str(acr)


def unknown_login() -> web.Response:
    return page("This login is not known here",
                "<p>Demo Shop does not know this login: it ended, or the demo restarted.</p>"
                '<div class="actions"><a class="button" href="/">Start again</a></div>',
                status=404)


def not_found(status: int = 404) -> web.Response:
    return page("Page not found", "<p>There is no page at this address.</p>"
                '<div class="actions"><a class="button" href="/">Go to the start</a></div>',
                status=status)
