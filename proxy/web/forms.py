"""Reading request parameters once, the same way everywhere."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiMapping

from proxy.oauth.errors import OAuthError

FORM = "application/x-www-form-urlencoded"


def single_values(params: MultiMapping[str]) -> dict[str, str]:
    """RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were
    omitted from the request." and "Request and response parameters MUST NOT be included
    more than once." """
    values: dict[str, str] = {}
    for key, value in params.items():
        if key in values:
            raise OAuthError("invalid_request", f"parameter {key!r} appears more than once")
        values[key] = str(value)
    return {k: v for k, v in values.items() if v != ""}


async def read_params(request: web.Request) -> dict[str, str]:
    """Query parameters for GET, the form body for POST."""
    if request.method == "GET":
        return single_values(request.query)
    if request.content_type != FORM:
        raise OAuthError("invalid_request", f"send the parameters as {FORM}")
    form = await request.post()
    if any(not isinstance(v, str) for v in form.values()):
        raise OAuthError("invalid_request", "file uploads are not accepted")
    return single_values(form)  # type: ignore[arg-type]
