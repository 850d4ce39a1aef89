"""The few HTML pages the proxy shows: errors and the plain 404, the bank picker (and
the choice made on it), the one-tap "Continue to <bank>" interstitial, and the waiting
page of a decoupled login.

Plain, accessible HTML with no script and no form: a language, a viewport, real
links at least 44 px tall, a heading per page, a layout that fits a 320 px wide
screen. Every page forbids framing (no clickjacking of the picker or the
interstitial), sends no Referer (URLs carry handles) and is never cached. None
refreshes by itself (WCAG 2.2.1, failure F41): the user moves on with a link.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
*, *::before, *::after {{ box-sizing: border-box }}
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #1b1b1b; background: #fff;
       overflow-wrap: anywhere }}
h1 {{ font-size: 1.6rem; line-height: 1.25 }}
ul.choices {{ list-style: none; padding: 0; margin: 0 }}
.action {{ display: block; width: 100%; min-height: 2.75rem; margin: .5rem 0;
          padding: .75rem 1rem; font-size: 1.1rem; text-align: center;
          border: 2px solid #1b1b1b; border-radius: .4rem; background: #fff;
          color: #1b1b1b; text-decoration: none }}
.action.primary {{ background: #1a4f9c; border-color: #1a4f9c; color: #fff }}
.action small {{ display: block; font-size: .9rem }}
.action:focus-visible {{ outline: 3px solid #1a4f9c; outline-offset: 2px }}
.action.primary:focus-visible {{ outline-color: #1b1b1b }}
.code {{ font-size: 1.6rem; font-weight: bold; letter-spacing: .05em; text-align: center;
        padding: .5rem; border: 2px dashed #1b1b1b; border-radius: .4rem }}
small {{ color: #4a4a4a }}
</style></head>
<body><main><h1>{heading}</h1>
{body}
</main></body></html>
"""


@dataclass(frozen=True)
class Back:
    """Where a page sends the user to start again: the client's home (``client_uri``)."""

    name: str
    url: str

    def link(self) -> str:
        return (f'<a class="action" href="{html.escape(self.url)}">'
                f"Back to {html.escape(self.name)}</a>")


def page(
    heading: str,
    body: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """``body`` is HTML the caller escaped; ``heading`` is text."""
    text = _TEMPLATE.format(title=html.escape(heading), heading=html.escape(heading), body=body)
    return web.Response(
        status=status,
        text=text,
        content_type="text/html",
        headers={**HEADERS, **(headers or {})},
    )


def _start_again(back: Back | None) -> str:
    if back is not None:
        return back.link()
    return "<p>Go back to the app or website where you started, and log in again there.</p>"


# framework errors that are no failed login: a page of their own
_NOT_LOGIN = {
    404: ("Page not found", "There is no page at this address."),
    405: ("Page not found", "This address cannot be opened that way."),
}


def error(
    error: str, description: str, status: int, headers: Mapping[str, str],
    back: Back | None = None,
) -> web.Response:
    """The error page: what went wrong, the OAuth error code, and a way forward."""
    if status in _NOT_LOGIN:
        heading, text = _NOT_LOGIN[status]
        return page(heading, f"<p>{html.escape(text)}</p>", status=status, headers=headers)
    body = (
        f"<p>{html.escape(description)}</p>\n"
        f"{_start_again(back)}\n"
        f"<p><small>Error: <code>{html.escape(error)}</code> (HTTP {status})</small></p>"
    )
    return page("We could not complete the login", body, status=status, headers=headers)


@dataclass(frozen=True)
class Option:
    """One bank on the picker: its link, its name and the line under it."""

    url: str
    name: str
    description: str | None = None


def bank_picker(options: Sequence[Option], client_name: str | None = None) -> web.Response:
    """One link per bank, no form: a form's submission that a redirect takes to another
    origin (the bank) is blocked by CSP form-action in Chromium, and a link is a plain
    navigation (tests/browser/test_picker.py)."""
    links = "\n".join(
        f'<li><a class="action" href="{html.escape(o.url)}">{html.escape(o.name)}'
        + (f"<small>{html.escape(o.description)}</small>" if o.description else "")
        + "</a></li>"
        for o in options
    )
    to = f" to {html.escape(client_name)}" if client_name else ""
    body = (
        f'<p id="choose">Choose the bank or eID app you want to log in{to} with.</p>\n'
        f'<ul class="choices" aria-labelledby="choose">\n{links}\n</ul>'
    )
    return page("Choose your bank", body)


def chosen(bank_name: str, url: str | None, back: Back | None) -> web.Response:
    """The picker once a bank was chosen (Back, or a reload): that choice, and a link on
    to the login it started while it goes on; it never starts another."""
    name = html.escape(bank_name)
    if url is None:
        return ended(bank_name, back)
    body = (
        f"<p>You chose {name} for this login.</p>\n"
        f'<a class="action primary" href="{html.escape(url)}">Continue with {name}</a>\n'
        + (back.link() if back is not None else "")
    )
    return page(f"You chose {bank_name}", body)


def ended(bank_name: str, back: Back | None) -> web.Response:
    """A page of a login that has finished or expired."""
    body = (
        f"<p>This login with {html.escape(bank_name)} has ended: it was completed, "
        "cancelled, or it expired.</p>\n" + _start_again(back)
    )
    return page("This login has ended", body)


def _binding(bank_name: str, binding_message: str | None) -> str:
    """CIBA Core §7.1, binding_message: "A human-readable identifier or message intended
    to be displayed on both the consumption device and the authentication device to
    interlock them together for the transaction by way of a visual cue for the
    end-user." This page is on the consumption device."""
    if not binding_message:
        return ""
    return (
        f'<p id="binding">The {html.escape(bank_name)} app shows this code. Approve only if '
        "it is the same:</p>\n"
        f'<p class="code" aria-describedby="binding">{html.escape(binding_message)}</p>\n'
    )


def interstitial(
    bank_name: str, url: str, *, binding_message: str | None = None,
    waiting_url: str | None = None,
) -> web.Response:
    """iOS opens a universal link in its app only from a user gesture, not from a
    redirect: one tap on a real link does it. A decoupled bank's page also shows the
    code to compare, and links to its waiting page."""
    name = html.escape(bank_name)
    body = (
        f"<p>You will now continue in the {name} app.</p>\n"
        + _binding(bank_name, binding_message)
        + f'<a class="action primary" href="{html.escape(url)}">Continue to {name}</a>\n'
    )
    if waiting_url is not None:
        body += (
            f'<a class="action" href="{html.escape(waiting_url)}">I approved on another '
            "device</a>\n"
        )
    return page(f"Continue to {bank_name}", body)


def waiting(url: str, bank_name: str, binding_message: str | None = None) -> web.Response:
    """A decoupled login the bank has not finished: the user checks again with a link
    (their bank's app usually brings them back here by itself)."""
    body = (
        f'<p role="status">Approve the login in the {html.escape(bank_name)} app, then '
        "come back here.</p>\n"
        + _binding(bank_name, binding_message)
        + f'<a class="action primary" href="{html.escape(url)}">Check again</a>'
    )
    return page("Waiting for your bank", body)
