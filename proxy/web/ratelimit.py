"""Rate limits on /authorize, /native/authorize and on every endpoint that authenticates a
client or a resource server: /token, /par, /revoke, /introspect, /gateway/check
(``rate_limits:`` in config).

Two counters per request, each a fixed window of ``window`` seconds kept in the
store (so every instance shares them):

- per source address: slows down floods from one place;
- per claimed client: slows down secret (or assertion) guessing against one
  client, whichever addresses it comes from. The client id is read as the
  handler will authenticate it (HTTP Basic username, else the ``iss`` of a
  ``client_assertion``, else ``client_id``), but *nothing is verified here*: it
  is only a counter key. Anyone may claim a client's id, so a per-client limit
  also caps that client's legitimate traffic: size it for the client's peak.

The endpoints where clients authenticate (/token, /par, /revoke) count together: one
count per client and one per address for the three, so that guesses spread over them
add up in one count instead of each endpoint granting its own allowance (RFC 6749
§10.10: "The authorization server MUST prevent attackers from guessing ... client
credentials"). Each endpoint refuses once that shared count passes its own limit; one
of the three left out of ``per_client`` (or ``per_address``) while another is named
takes the smallest limit named among them. /introspect, where resource servers
authenticate, and /authorize count on their own: different callers, whose volumes
must not starve each other (docs/security.md, "Rate limits").

Cost: one store round trip per counted key, only for endpoints that have a
limit; the address is counted first and a refused request costs nothing more.
A store that is down raises StoreUnavailable, which the error path answers 503.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from aiohttp import web

from proxy.config.settings import RateLimits
from proxy.oauth.client_assertion import asserted_client_id
from proxy.oauth.clients import GATEWAY_CREDENTIALS, basic_credentials
from proxy.oauth.errors import OAuthError
from proxy.oauth.services import Services
from proxy.observability.metrics import RATE_LIMITED, series
from proxy.web.forms import FORM, read_params

# route -> endpoint name in rate_limits.per_client / per_address
LIMITED = {
    "/authorize": "authorize",
    "/native/authorize": "authorize",
    # a pick starts a login as /authorize does: it counts under the same limits
    "/authorize/pick/{pick_id}/{bank_id}": "authorize",
    "/native/authorize/pick": "authorize",
    "/token": "token",
    "/par": "par",
    "/revoke": "revoke",
    "/challenge": "challenge",
    "/introspect": "introspect",
    # a gateway checking a token authenticates as a resource server, as at /introspect
    # (proxy.endpoints.gateway.ROUTE): the same limits and count
    "/gateway/check{tail}": "introspect",
}
# endpoint name -> the count it adds to: endpoints of one group share their counts
GROUPS = {
    "authorize": "authorize",
    "token": "client-auth",
    "par": "client-auth",
    "revoke": "client-auth",
    "challenge": "client-auth",
    "introspect": "introspect",
}
COUNTER_KIND = "rate"


def endpoint_of(request: web.Request) -> str | None:
    resource = request.match_info.route.resource
    return LIMITED.get(resource.canonical) if resource is not None else None


def source_address(request: web.Request, trust_forwarded_for: bool) -> str:
    """The peer's address, or with ``trust_forwarded_for`` the last X-Forwarded-For hop
    (the one our own reverse proxy appended; earlier hops are the client's to forge).
    IPv6 is counted per /64: one host usually holds a whole /64."""
    address = request.remote or "unknown"
    if trust_forwarded_for:
        hops = ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
        address = next((h.strip() for h in reversed(hops) if h.strip()), address)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


async def claimed_client_id(request: web.Request) -> str | None:
    """The client the request says it is, unverified. The form is read the one way
    (:func:`proxy.web.forms.read_params`; aiohttp caches the body, so the handler reads
    the same bytes); one it refuses counts as naming no client, and the handler says why."""
    params: Mapping[str, str] = {}
    if request.method == "GET":
        params = {k: v for k, v in request.query.items()}
    elif request.content_type == FORM:
        try:
            params = await read_params(request)
        except OAuthError:
            params = {}
    # a gateway's check carries its caller's token in Authorization, its own credentials
    # in Gateway-Authorization (proxy.oauth.clients.ClientRegistry.authenticate_gateway)
    header = GATEWAY_CREDENTIALS if request.path.startswith("/gateway/") else "Authorization"
    try:
        basic = basic_credentials(request, header)
        if basic is not None:
            return basic.client_id
        if "client_assertion" in params:
            return asserted_client_id(params)
    except OAuthError:
        return None  # malformed: the handler tells the client why
    return params.get("client_id") or None


def _known(svc: Services, client_id: str) -> bool:
    """Only registered ids get a counter: a spray of made-up ids costs no store keys
    (the address limit is what slows that down)."""
    return svc.clients.get(client_id) is not None or any(
        server.client_id == client_id for server in svc.config.resource_servers
    )


def limit_of(per_endpoint: dict[str, int], endpoint: str) -> int | None:
    """The limit ``endpoint`` refuses at: its own, else the smallest of its group's (so a
    group's count is never allowed past the largest limit the operator gave it, however
    requests are spread); None when nothing in its group is limited."""
    own = per_endpoint.get(endpoint)
    if own is not None:
        return own
    group = GROUPS[endpoint]
    return min((limit for name, limit in per_endpoint.items() if GROUPS.get(name) == group),
               default=None)  # fmt: skip


async def _count(svc: Services, limits: RateLimits, endpoint: str, limit: int,
                 by: str, value: str) -> None:
    """One more request on the count of ``(endpoint's group, by, value)``; refused over
    ``limit``."""
    window = limits.window
    key = f"{GROUPS[endpoint]} {by} {value}"
    count, reset_in = await svc.store.hit(COUNTER_KIND, key, window)
    if count <= limit:
        return
    series(RATE_LIMITED, endpoint, by).inc()
    # There is no OAuth "rate limited" error code. RFC 6749 §4.1.2.1 offers
    # temporarily_unavailable: "The authorization server is currently unable to handle
    # the request due to a temporary overloading or maintenance of the server." It is
    # what clients already treat as "retry later" (the store-down 503 uses it too).
    # The status is RFC 6585 §4's 429, which "MAY include a Retry-After header
    # indicating how long to wait before making a new request".
    raise OAuthError(
        "temporarily_unavailable",
        f"too many requests; retry after {reset_in} seconds",
        status=429,
        headers={"Retry-After": str(reset_in)},
        # the logs say which limit; an address is not logged, a client id may be
        detail=f"{endpoint} limit per {by} reached: {count} > {limit} in {window}s"
        + (f" (client_id {value!r})" if by == "client" else ""),
    )


async def enforce_rate_limits(request: web.Request, svc: Services) -> None:
    """Raises OAuthError (429) when the request is over a limit; called by the one
    middleware (:func:`proxy.app.request_middleware`) before the handler, inside the
    error path."""
    limits = svc.config.rate_limits
    endpoint = endpoint_of(request) if limits is not None else None
    if limits is None or endpoint is None:
        return
    per_address = limit_of(limits.per_address, endpoint)
    if per_address is not None:
        address = source_address(request, limits.trust_forwarded_for)
        await _count(svc, limits, endpoint, per_address, "address", address)
    per_client = limit_of(limits.per_client, endpoint)
    if per_client is not None:
        client_id = await claimed_client_id(request)
        if client_id is not None and _known(svc, client_id):
            await _count(svc, limits, endpoint, per_client, "client", client_id)
