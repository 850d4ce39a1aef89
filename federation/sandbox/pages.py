"""The sandbox bank's HTML: one page shell and one Approve / Deny form, shared by the
browser consent page and the two "bank app" pages (CIBA and browser-less App2App)."""

from __future__ import annotations

import html

from aiohttp import web

from federation.sandbox.bank import SandboxBank


def page(title: str, body: str, status: int = 200) -> web.Response:
    text = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return web.Response(
        text=text, status=status, content_type="text/html", headers={"Cache-Control": "no-store"}
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
