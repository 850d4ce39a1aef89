"""Pushed authorization requests (RFC 9126), merchant side.

``push`` keeps a validated request under a fresh ``request_uri``; ``resolve``
turns an authorization request that names one back into its parameters, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.config.settings import ClientSettings
from proxy.model.records import PushedRequest
from proxy.model.tokens import new_value
from proxy.oauth.errors import OAuthError
from proxy.oauth.once import take_once
from proxy.oauth.services import Services

# RFC 9126 §2.2: "The format of the request_uri value is at the discretion of the
# authorization server, but it MUST contain some part generated using a cryptographically
# strong pseudorandom algorithm"; the URN prefix is the one the RFC's examples use.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization request's parameters, and where they came from."""

    params: dict[str, str]
    pushed: bool = False  # through /par (RFC 9126), named by its request_uri
    # pushed by a client that authenticated itself (a confidential client)
    authenticated: bool = False


async def push(svc: Services, client: ClientSettings, params: Mapping[str, str]) -> str:
    """Keep the (already checked) request, which holds only the parameters the proxy reads
    (client authentication is not among them); the request_uri that names it. A
    confidential client authenticated itself at /par (RFC 9126 §2.1), a public one only
    named itself."""
    handle = new_value()
    record = PushedRequest(client_id=client.client_id, params=dict(params),
                           authenticated=client.type == "confidential")
    await svc.store.upsert(
        PushedRequest.kind, handle, record.to_json(), svc.config.lifetimes.request_uri
    )
    return REQUEST_URI_PREFIX + handle


async def resolve(svc: Services, params: Mapping[str, str]) -> AuthorizationRequest:
    """The authorization request's parameters: ``params`` themselves, or those pushed
    under their ``request_uri``.

    RFC 9101 §6.3 (which RFC 9126 §4 builds on): the authorization server "MUST only use
    the parameters in the Request Object, even if the same parameter is provided in the
    query parameter", so everything else in the request is ignored; the browser-less
    endpoint's own ``native_callback_uri`` is the one addition (it belongs to how the
    app is reached, not to the request the client pushed), except for a fapi2 client.
    """
    request_uri = params.get("request_uri")
    if request_uri is None:
        return AuthorizationRequest(dict(params))
    client_id = params.get("client_id")
    if client_id is None:
        # RFC 9126 §4's example sends client_id with the request_uri; the client must
        # say who it is before the request is looked up
        raise OAuthError("invalid_request", "client_id is missing")
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        raise OAuthError("invalid_request_uri", "request_uri was not issued by /par")
    handle = request_uri.removeprefix(REQUEST_URI_PREFIX)
    # RFC 9126 §4: "Authorization servers SHOULD treat request_uri values as one-time use
    # but MAY allow for duplicate requests due to a user reloading/refreshing their user
    # agent. An expired request_uri MUST be rejected as invalid." One-time use here.
    pushed = PushedRequest.from_json(await take_once(
        svc, PushedRequest.kind, handle, marker_ttl=svc.config.lifetimes.request_uri,
        unknown=OAuthError("invalid_request_uri", "request_uri is unknown or has expired"),
        used=OAuthError("invalid_request_uri", "request_uri was already used; push again")))
    # a request_uri is bound to the client that pushed it: another client naming it
    # (a stolen or swapped request_uri) is refused
    if pushed.client_id != client_id:
        raise OAuthError("invalid_request_uri", "request_uri was pushed by another client")
    resolved = dict(pushed.params)
    client = svc.clients.get(client_id)
    # a fapi2 client's whole request is pushed (FAPI 2.0 Security Profile §5.3.2.2: the
    # server "shall reject authorization requests sent without [RFC9126]"): RFC 9101
    # §6.3 holds for it without the exception, its native_callback_uri is the pushed one
    if "native_callback_uri" in params and not (client and client.profile == "fapi2"):
        resolved["native_callback_uri"] = params["native_callback_uri"]
    return AuthorizationRequest(resolved, pushed=True, authenticated=pushed.authenticated)
