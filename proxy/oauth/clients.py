"""Who is calling: merchant clients at /token and /revoke, resource servers at /introspect."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote_plus

from aiohttp import web
from multidict import MultiDictProxy

from proxy.config.settings import ClientSettings, ResourceServer
from proxy.oauth.client_assertion import asserted_client_id, verify_assertion
from proxy.oauth.errors import OAuthError
from proxy.store import Store


@dataclass(frozen=True)
class BasicCredentials:
    client_id: str
    secret: str


# A gateway's check (GET /gateway/check) carries its caller's Authorization header; the
# gateway itself authenticates as a resource server with HTTP Basic in this one
GATEWAY_CREDENTIALS = "Gateway-Authorization"


def basic_credentials(request: web.Request, header_name: str = "Authorization"
                      ) -> BasicCredentials | None:  # fmt: skip
    """RFC 6749 §2.3.1: "The client identifier is encoded using the
    application/x-www-form-urlencoded encoding algorithm ..., and the encoded value
    is used as the username; the client password is encoded using the same
    algorithm and used as the password." Malformed headers are invalid_client."""
    header = request.headers.get(header_name, "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        # a non-ASCII str makes b64decode raise a plain ValueError, not binascii.Error
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise invalid_client("malformed Basic authorization header", basic=True) from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise invalid_client("malformed Basic authorization header", basic=True)
    return BasicCredentials(unquote_plus(user), unquote_plus(password))


def invalid_client(description: str, *, basic: bool) -> OAuthError:
    """RFC 6749 §5.2: "If the client attempted to authenticate via the "Authorization"
    request header field, the authorization server MUST respond with an HTTP 401
    (Unauthorized) status code and include the "WWW-Authenticate" response header field
    matching the authentication scheme used by the client." """
    headers = {"WWW-Authenticate": 'Basic realm="app2app-proxy"'} if basic else {}
    return OAuthError("invalid_client", description, status=401, headers=headers)


class _HasSecret(Protocol):
    @property
    def client_secret(self) -> str | None: ...
    @property
    def client_secret_sha256(self) -> bytes | None: ...


def _secret_matches(party: _HasSecret, given: str) -> bool:
    """Constant-time comparison (hmac.compare_digest) with the configured secret, or with
    its SHA-256 when the config holds only the hash."""
    if party.client_secret_sha256 is not None:
        given_hash = hashlib.sha256(given.encode()).digest()
        return hmac.compare_digest(party.client_secret_sha256, given_hash)
    expected = party.client_secret
    return expected is not None and hmac.compare_digest(expected.encode(), given.encode())


# how many verified Basic headers a registry keeps (ClientRegistry._verified)
_VERIFIED_HEADERS = 256


class ClientRegistry:
    def __init__(
        self,
        clients: tuple[ClientSettings, ...],
        resource_servers: tuple[ResourceServer, ...],
        *,
        issuer: str,
        store: Store,
    ) -> None:
        self._issuer = issuer
        self._store = store
        self._clients = {c.client_id: c for c in clients}
        self._resource_servers = {r.client_id: r for r in resource_servers}
        # HTTP Basic headers that named a resource server with its right secret: a
        # resource server sends the same header with every introspection, and decoding
        # and hashing it cost more than the rest of the authentication. Looked up by the
        # whole header (a dict compares keyed hashes first, so a lookup tells nothing of
        # how close a wrong header came); built anew with the registry at each reload, so
        # a secret changed or removed takes effect at once.
        self._verified: dict[str, ResourceServer] = {}

    def get(self, client_id: str | None) -> ClientSettings | None:
        return self._clients.get(client_id) if client_id else None

    async def authenticate(
        self, request: web.Request, form: MultiDictProxy[str] | Mapping[str, str]
    ) -> ClientSettings:
        """Authenticate a merchant client at /token or /revoke.

        RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in
        each request." A public client only identifies itself with ``client_id``.
        """
        basic = basic_credentials(request)
        posted_secret = form.get("client_secret")
        assertion = form.get("client_assertion")
        if sum(x is not None for x in (basic, posted_secret, assertion)) > 1:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        if assertion is not None:
            client = self.get(asserted_client_id(form))
            if client is None:
                raise invalid_client("unknown client or wrong credentials", basic=False)
            # the audience is this server: its issuer, or the endpoint's URL (from the
            # configured issuer, never from the Host header)
            fapi2 = client.profile == "fapi2"
            if client.type != "confidential":
                raise invalid_client("a public client has no keys for private_key_jwt",
                                     basic=False)  # fmt: skip
            await verify_assertion(client, assertion, self._audiences(request, fapi2=fapi2),
                                   self._store, int(time.time()), fapi2=fapi2)  # fmt: skip
            return client
        if basic is not None:
            if form.get("client_id") not in (None, basic.client_id):
                raise OAuthError("invalid_request", "client_id differs from the authenticated one")
            client = self.get(basic.client_id)
            if client is None or client.type != "confidential":
                raise invalid_client("unknown client or wrong credentials", basic=True)
            if not _secret_matches(client, basic.secret):
                raise invalid_client("unknown client or wrong credentials", basic=True)
            return client
        client_id = form.get("client_id")
        client = self.get(client_id)
        if client is None:
            raise invalid_client("unknown client or wrong credentials", basic=False)
        if client.type == "public":
            if posted_secret is not None:
                raise invalid_client("a public client has no secret", basic=False)
            return client
        if posted_secret is None or not _secret_matches(client, posted_secret):
            raise invalid_client("unknown client or wrong credentials", basic=False)
        return client

    async def authenticate_resource_server(
        self, request: web.Request, form: Mapping[str, str]
    ) -> ResourceServer:
        """Resource servers authenticate at /introspect (RFC 7662 §2.1: "the endpoint
        MUST also require some form of authorization") with HTTP Basic or
        private_key_jwt (RFC 7523), like confidential clients at /token."""
        assertion = form.get("client_assertion")
        if assertion is None:
            known = self._verified.get(request.headers.get("Authorization", ""))
            if known is not None:
                return known
        basic = basic_credentials(request)
        if basic is not None and assertion is not None:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        if assertion is not None:
            server = self._resource_servers.get(asserted_client_id(form))
            if server is None:
                raise invalid_client("unknown resource server or wrong credentials",
                                     basic=False)  # fmt: skip
            await verify_assertion(server, assertion, self._audiences(request, fapi2=False),
                                   self._store, int(time.time()))  # fmt: skip
            return server
        if basic is None:
            raise invalid_client("authenticate with HTTP Basic or private_key_jwt", basic=True)
        server = self._resource_servers.get(basic.client_id)
        if server is None or not _secret_matches(server, basic.secret):
            raise invalid_client("unknown resource server or wrong credentials", basic=True)
        self._remember(request.headers["Authorization"], server)
        return server

    def _remember(self, header: str, server: ResourceServer) -> None:
        if len(self._verified) >= _VERIFIED_HEADERS:  # bounded: a few per resource server
            self._verified.clear()
        self._verified[header] = server

    def authenticate_gateway(self, request: web.Request) -> ResourceServer:
        """A gateway checking its caller's token (GET /gateway/check) authenticates as a
        resource server with HTTP Basic in ``Gateway-Authorization`` (its caller's token
        takes ``Authorization``; nginx and Envoy send a fixed header, so no single-use
        client assertion). A failure is 400 ``invalid_client``, not 401: the gateway
        would pass a 401 on to its caller as a verdict on the caller's token (RFC 6749
        §5.2 demands 401 only of a client that authenticated "via the "Authorization"
        request header field"); any other status is an error of the gateway's own."""
        try:
            basic = basic_credentials(request, GATEWAY_CREDENTIALS)
        except OAuthError as exc:
            raise OAuthError("invalid_client", "malformed Gateway-Authorization header"
                             ) from exc  # fmt: skip
        if basic is None:
            raise OAuthError("invalid_client",
                             "authenticate with HTTP Basic in the Gateway-Authorization header")
        server = self._resource_servers.get(basic.client_id)
        if server is None or not _secret_matches(server, basic.secret):
            raise OAuthError("invalid_client", "unknown resource server or wrong credentials")
        return server

    def _audiences(self, request: web.Request, *, fapi2: bool) -> list[str]:
        """What a client assertion's ``aud`` may be: this server (its issuer) or the
        endpoint's URL, from the configured issuer, never from the Host header. FAPI 2.0
        Security Profile §5.3.2.1: the authorization server "shall only accept its issuer
        identifier value (as defined in [RFC8414]) as a string in the aud claim received
        in client authentication assertions"."""
        if fapi2:
            return [self._issuer]
        return [self._issuer, f"{self._issuer}/token", f"{self._issuer}{request.path}"]
