"""The playground's pages: one shell, escaped text, JSON blocks, masked secrets.

Like the proxy's own pages: a viewport, a layout that fits a 320 px screen, buttons at
least 44 px tall, no script, a Content-Security-Policy that forbids framing and lets
its forms post only to itself (each answers 303 to a page of its own).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": CSP,
           "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}

_STYLE = """
*, *::before, *::after { box-sizing: border-box }
body { font-family: system-ui, sans-serif; max-width: 56rem; margin: 0 auto;
       padding: 0 1rem 3rem; line-height: 1.5; color: #1d1d1f; background: #fff;
       overflow-wrap: anywhere }
dl.kinds dt { font-weight: bold; margin-top: .5rem }
dl.kinds dd { margin-left: 1rem }
header.site { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline;
              border-bottom: 3px solid #6b2fa3; padding: .75rem 0; margin-bottom: 1rem }
header.site strong { color: #6b2fa3; font-size: 1.15rem }
h1 { font-size: 1.7rem; line-height: 1.25 }
h2 { font-size: 1.3rem; margin-top: 2rem }
h3 { font-size: 1.05rem; margin: 1.25rem 0 .25rem }
pre { background: #f4f1f8; padding: .75rem; border-radius: .4rem; overflow-x: auto;
      font-size: .85rem; white-space: pre-wrap; overflow-wrap: anywhere }
code { font-size: .9em; overflow-wrap: anywhere }
a { color: #4b1d7a }
.button { display: inline-block; min-height: 2.75rem; padding: .6rem 1rem; margin: .25rem 0;
          border: 2px solid #6b2fa3; border-radius: .4rem; background: #6b2fa3; color: #fff;
          font-size: 1rem; text-decoration: none; cursor: pointer; text-align: center }
.button.secondary { background: #fff; color: #4b1d7a }
.button:focus-visible { outline: 3px solid #1d1d1f; outline-offset: 2px }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center }
.actions form { margin: 0 }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(15rem, 1fr));
         gap: 1rem; padding: 0; list-style: none }
.cards li { border: 1px solid #c9bfd6; border-radius: .5rem; padding: .75rem 1rem }
ol.hops > li { margin-bottom: 1rem }
.hop-title { font-weight: bold }
.who { color: #5a5a5f; font-weight: normal }
table { border-collapse: collapse; width: 100% }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem;
         border-bottom: 1px solid #ddd; overflow-wrap: anywhere }
.error { border-left: 4px solid #b00020; padding-left: .75rem }
img { max-width: 100%; height: auto }
"""


def esc(text: object) -> str:
    return html.escape(str(text))


def as_json(value: Any) -> str:
    """Pretty JSON as readable text: non-ASCII as itself (not ``\\u2026``), escaped."""
    return f"<pre><code>{esc(json.dumps(value, indent=2, ensure_ascii=False))}</code></pre>"


def short(value: str, keep: int = 12) -> str:
    """A token, code or handle shortened: enough to recognise it, not to use it."""
    return value if len(value) <= keep + 4 else value[:keep] + "…"


SECRET_FIELDS = frozenset({"client_secret", "code_verifier", "client_assertion",
                           "password", "api_key"})
TOKEN_FIELDS = frozenset({"code", "access_token", "refresh_token", "token", "id_token",
                          "bank_access_token", "request_uri", "device_secret"})


def masked(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as shown: secrets as ``••••``, tokens and codes shortened, the rest as
    they are; an Authorization header names its scheme (and a Basic one its user)."""
    shown: dict[str, Any] = {}
    for key, value in params.items():
        if key.lower() == "authorization" and isinstance(value, str):
            shown[key] = mask_authorization(value)
        elif key in SECRET_FIELDS:
            shown[key] = "••••"
        elif key in TOKEN_FIELDS and isinstance(value, str):
            shown[key] = short(value)
        elif isinstance(value, Mapping):
            shown[key] = masked(value)
        else:
            shown[key] = value
    return shown


def mask_authorization(value: str) -> str:
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() == "basic":
        try:
            user = base64.b64decode(credentials).decode().partition(":")[0]
        except ValueError:
            user = "?"
        return f"Basic base64({user}:••••)"
    return f"{scheme} {short(credentials)}"


def page(title: str, body: str, *, status: int = 200, site: str = "Demo Shop") -> web.Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · {esc(site)}</title><style>{_STYLE}</style></head><body>"
        f'<header class="site"><strong>{esc(site)}</strong>'
        '<span>the app2app-proxy playground</span><a href="/">Start</a></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html", headers=HEADERS)


def see_other(url: str) -> web.Response:
    """Post/redirect/get: a form's answer is a page of its own (a reload re-posts nothing)."""
    return web.Response(status=303, headers={"Location": url, "Cache-Control": "no-store"})


def button_form(action: str, label: str, *, secondary: bool = False) -> str:
    cls = "button secondary" if secondary else "button"
    return (f'<form method="post" action="{esc(action)}">'
            f'<button class="{cls}" type="submit">{esc(label)}</button></form>')
