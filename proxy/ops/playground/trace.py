"""The hops of a login, in order, as the playground shows them.

Three sources, merged by time: the playground's own calls (its backend to the proxy,
with the answers), the browser's requests to the proxy (a middleware the demo puts in
front of the proxy's app: front channel only), and the requests the sandbox bank (and
the broker beside it) received. A login's hops are those between its start and its
end: the playground is one person's tool, and two logins run at once would mix.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from federation.sandbox import RecordedRequest
from proxy.ops.playground.html import masked

# where a browser goes at the proxy; the rest is back channel, which the playground
# records itself when it is the caller
FRONT_CHANNEL = ("/authorize", "/callback/", "/resume/")
# what the bank receives from a browser (its pages); the rest comes from the proxy
BANK_PAGES = ("/authorize", "/app2app/", "/itsme/app/")
# the browser's visits kept (the playground is one person's; memory stays bounded)
KEEP = 1000
# fetched once and cached: noise in a login's hops
QUIET = ("/.well-known/", "/jwks")


@dataclass
class Hop:
    who: str  # "Demo Shop backend → proxy", "browser → bank", ...
    method: str
    url: str  # without the query
    params: dict[str, Any]  # the query or the form, masked
    at: float = field(default_factory=time.time)
    status: int | None = None
    answer: Any = None  # the JSON answer (masked), or where a redirect goes
    note: str = ""


def split(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def redirect_answer(location: str | None) -> str | None:
    return f"redirect to {split(location)}" if location else None


class ProxyRecorder:
    """The browser's requests to the proxy, with the status and where each went on."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.hops: list[Hop] = []

    @property
    def middleware(self) -> Middleware:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not request.path.startswith(FRONT_CHANNEL) or request.method != "GET":
                return await handler(request)
            hop = Hop("browser → proxy", "GET", self.issuer + request.path,
                      masked(dict(request.query)))
            self.hops.append(hop)
            del self.hops[:-KEEP]
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                hop.status, hop.answer = exc.status, redirect_answer(exc.headers.get("Location"))
                raise
            hop.status = response.status
            hop.answer = redirect_answer(response.headers.get("Location"))
            if hop.answer is None and response.content_type == "text/html":
                hop.answer = "a page"
            return response

        return record


def bank_hops(issuer: str, requests: Sequence[RecordedRequest], since: float) -> list[Hop]:
    hops = []
    for r in requests:
        if r.at < since or r.path.startswith(QUIET):
            continue
        who = "browser → bank" if r.path.startswith(BANK_PAGES) else "proxy → bank"
        params = masked({**r.query, **r.form})
        if "Authorization" in r.headers:
            params["Authorization"] = masked({"Authorization": r.headers["Authorization"]})[
                "Authorization"]
        hops.append(Hop(who, r.method, issuer + r.path, params, at=r.at))
    return hops


def in_order(*sources: Sequence[Hop], since: float, until: float | None = None) -> list[Hop]:
    end = until if until is not None else float("inf")
    return sorted((h for s in sources for h in s if since <= h.at <= end), key=lambda h: h.at)
