"""The few HTML pages the proxy shows: errors, the bank picker, the one-tap
"Continue to <bank>" interstitial, and the waiting page of a decoupled login.

Plain, accessible HTML with no script and no form: a language, a viewport, real
links, a heading per page. Every page forbids framing (no clickjacking of the
picker or the interstitial), sends no Referer (URLs carry handles) and is never
cached.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

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
<meta name="viewport" content="width=device-width, initial-scale=1">{head}
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto;
       padding: 0 1rem; line-height: 1.5 }}
.action {{ display: block; width: 100%; margin: .5rem 0; padding: .9rem; font-size: 1.1rem;
          text-align: center; border: 1px solid #333; border-radius: .4rem;
          background: #fff; color: #000; text-decoration: none; cursor: pointer }}
.action:focus {{ outline: 3px solid #1a5fb4; outline-offset: 2px }}
</style></head>
<body><main><h1>{heading}</h1>
{body}
</main></body></html>
"""


def page(
    heading: str,
    body: str,
    *,
    status: int = 200,
    head: str = "",
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """``body`` and ``head`` are HTML the caller escaped; ``heading`` is text."""
    text = _TEMPLATE.format(
        title=html.escape(heading), heading=html.escape(heading), head=head, body=body
    )
    return web.Response(
        status=status,
        text=text,
        content_type="text/html",
        headers={**HEADERS, **(headers or {})},
    )


def error(error: str, description: str, status: int, headers: Mapping[str, str]) -> web.Response:
    body = (
        f"<p>{html.escape(description)}</p>\n"
        f"<p><small>Error: <code>{html.escape(error)}</code> (HTTP {status})</small></p>"
    )
    return page("We could not complete the login", body, status=status, headers=headers)


def bank_picker(banks: Sequence[tuple[str, str]]) -> web.Response:
    """One link per bank (``(url, name)``), no form: a form's submission that a redirect
    takes to another origin (the bank) is blocked by CSP form-action in Chromium, and a
    link is a plain navigation (tests/browser/test_picker.py)."""
    links = "\n".join(
        f'<li><a class="action" href="{html.escape(url)}">{html.escape(name)}</a></li>'
        for url, name in banks
    )
    body = (
        "<p id=\"choose\">Choose the bank or eID app you want to log in with.</p>\n"
        f'<ul aria-labelledby="choose" style="list-style: none; padding: 0">\n{links}\n</ul>'
    )
    return page("Choose your bank", body)


def interstitial(bank_name: str, url: str) -> web.Response:
    """iOS opens a universal link in its app only from a user gesture, not from a
    redirect: one tap on a real link does it."""
    name = html.escape(bank_name)
    body = (
        f"<p>You will now continue in the {name} app.</p>\n"
        f'<a class="action" href="{html.escape(url)}">Continue to {name}</a>'
    )
    return page(f"Continue to {bank_name}", body)


def waiting(url: str, interval: int) -> web.Response:
    """Checks again by itself every ``interval`` seconds (a meta refresh: no script)."""
    refresh = f'\n<meta http-equiv="refresh" content="{int(interval)};url={html.escape(url)}">'
    body = (
        '<p role="status">Approve the login in your bank app. This page checks again '
        f"every {int(interval)} seconds.</p>\n"
        f'<a class="action" href="{html.escape(url)}">Check now</a>'
    )
    return page("Waiting for your bank", body, head=refresh)
