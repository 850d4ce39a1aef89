"""The sandbox bank's HTML: one page shell and one Approve / Deny form, shared by the
browser consent page, the two "bank app" pages (CIBA and browser-less App2App) and
the broker's itsme app.

Like a real bank's pages: a viewport, buttons at least 44 px tall, a layout that fits a
320 px screen, no script, and a Content-Security-Policy that forbids framing. It has no
``form-action``: Chromium checks that directive against every redirect that follows a
submission, and an Approve goes on from the bank to the proxy's callback and from there
to the merchant's redirect URI, an origin the bank cannot know (Keycloak leaves
``form-action`` out for the same reason).
"""

from __future__ import annotations

import html

from aiohttp import web
from aiohttp.typedefs import Handler

from federation.sandbox.bank import SandboxBank

_STYLE = """
*, *::before, *::after { box-sizing: border-box }
body { font-family: system-ui, sans-serif; max-width: 30rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #14213d; background: #fff;
       overflow-wrap: anywhere }
header { font-weight: bold; color: #0b5d3b; border-bottom: 3px solid #0b5d3b;
         margin-bottom: 1rem }
h1 { font-size: 1.5rem; line-height: 1.25 }
form { display: flex; flex-wrap: wrap; gap: .75rem; margin: 1rem 0 }
button { flex: 1 1 8rem; min-height: 2.75rem; padding: .6rem 1rem; font-size: 1.05rem;
         border-radius: .4rem; border: 2px solid #0b5d3b; background: #fff;
         color: #0b5d3b; cursor: pointer }
button[value=approve] { background: #0b5d3b; color: #fff }
button:focus-visible { outline: 3px solid #14213d; outline-offset: 2px }
.code { font-size: 1.5rem; font-weight: bold; letter-spacing: .05em; text-align: center;
        padding: .5rem; border: 2px dashed #14213d; border-radius: .4rem }
"""


CSP = ("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
       "base-uri 'none'")


def page(title: str, body: str, status: int = 200, *, brand: str = "Sandbox Bank") -> web.Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><header>{html.escape(brand)} <small>(sandbox)</small></header>"
        f"<main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(
        text=text, status=status, content_type="text/html",
        headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP,
                 "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"},
    )


def error_page(description: str, status: int) -> web.Response:
    return page("Sandbox bank: error", f"<p>{html.escape(description)}</p>", status)


def decision_form(action: str, hidden: dict[str, str] | None = None) -> str:
    """A POST form to ``action`` with two submit buttons named ``decision``."""
    esc = html.escape
    fields = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in (hidden or {}).items()
    )
    return (
        f'<form method="post" action="{esc(action)}">{fields}'
        '<button type="submit" name="decision" value="approve">Approve</button> '
        '<button type="submit" name="decision" value="deny">Deny</button>'
        "</form>"
    )


def sign_in_question(bank: SandboxBank, client_id: str) -> str:
    esc = html.escape
    name = str(bank.user.claims.get("name", bank.user.sub))
    return f"<p>{esc(name)}, sign in to <strong>{esc(client_id)}</strong>?</p>"


_NOT_FOUND = {404: "There is no page at this address.",
              405: "This address cannot be opened that way."}


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's 404 and 405 are plain text: a browser gets a page, an API caller JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status not in _NOT_FOUND:
            raise
        if "text/html" in request.headers.get("Accept", ""):
            return page("Page not found", f"<p>{_NOT_FOUND[exc.status]}</p>", exc.status)
        allow = {k: v for k, v in exc.headers.items() if k == "Allow"}
        return web.json_response({"error": "invalid_request",
                                  "error_description": _NOT_FOUND[exc.status]},
                                 status=exc.status, headers=allow)


async def favicon(request: web.Request) -> web.Response:
    """No icon, and no 404 in the browser's console for it."""
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})
