"""The authorization request, checked as a list of small named checks.

Until the client and its redirect_uri are verified, a failure is an HTML page
(never a redirect: RFC 6749 §4.1.2.1 "the authorization server SHOULD inform the
resource owner of the error and MUST NOT automatically redirect the user-agent to
the invalid redirection URI"). After that, every failure is redirected to the
client with ``error``, ``state`` and ``iss``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping

from federation.bankid import device_info_problem
from federation.settings import BankSettings
from proxy.config.settings import ClientSettings, ResourceServer
from proxy.oauth.errors import OAuthError

Params = Mapping[str, str]

# --- what is kept of a request, and how long each value may be ----------------------

# The authorization request parameters the proxy reads, and the most characters each
# may hold. RFC 6749 §3.1: "The authorization server MUST ignore unrecognized request
# parameters." Ignored here means dropped when the request is read: nothing else is
# stored with a pushed request or a pending bank choice, or sent on to a bank (a bank's
# ``pass_through`` names are added, each bounded by PASS_THROUGH_LIMIT). The limits are
# far above what an honest client sends and keep the records small: the largest record
# a request can leave is their sum (tests/flows/test_request_size.py).
PARAMETER_LIMITS: Mapping[str, int] = {
    "client_id": 256,
    "redirect_uri": 2048,
    "native_callback_uri": 2048,
    "response_type": 64,
    "response_mode": 64,
    "scope": 1024,
    "state": 2048,
    "nonce": 2048,
    "code_challenge": 128,
    "code_challenge_method": 16,
    "acr_values": 512,
    "prompt": 64,
    "resource": 2048,
    "dpop_jkt": 64,
    "login_hint": 256,
    "login_hint_token": 2048,
    "binding_message": 64,
    # RFC 9396: a JSON array of objects; a payment is a few hundred characters
    "authorization_details": 2048,
    # BankID: URL-safe base64 of {"p", "ma", "mo"}, some 80 characters
    "device_info": 256,
    # refused by check_no_request_object; kept so that they are refused, not ignored
    "request": 8192,
    "request_uri": 512,
}
PASS_THROUGH_LIMIT = 1024


def pass_through_names(banks: Iterable[BankSettings]) -> frozenset[str]:
    """The parameters some bank takes on from the request (its ``pass_through``)."""
    return frozenset(name for bank in banks for name in bank.pass_through)


def known_parameters(params: Params, pass_through: Collection[str] = ()) -> dict[str, str]:
    """The parameters the proxy reads (PARAMETER_LIMITS and ``pass_through``); every
    other one is dropped."""
    return {k: v for k, v in params.items() if k in PARAMETER_LIMITS or k in pass_through}


def check_lengths(params: Params) -> None:
    """Every value within its limit; a longer one is refused, never cut (a cut state or
    login_hint would be a different one)."""
    for name, value in params.items():
        if len(value) > PARAMETER_LIMITS.get(name, PASS_THROUGH_LIMIT):
            raise OAuthError("invalid_request", f"{name} is too long")


def check_state_length(params: Params) -> None:
    """Checked before any redirect: the error would carry the state back (RFC 6749
    §4.1.2.1: state is REQUIRED in the error response "if a "state" parameter was
    present in the client authorization request"), so an oversized one is answered
    with an error page, never echoed into a Location header."""
    if len(params.get("state", "")) > PARAMETER_LIMITS["state"]:
        raise OAuthError("invalid_request", "state is too long")


def check_client(client: ClientSettings | None, params: Params) -> ClientSettings:
    if "client_id" not in params:
        raise OAuthError("invalid_request", "client_id is missing")
    if client is None:
        raise OAuthError("invalid_client", "this client_id is not registered")
    return client


# http://127.x.y.z[:port]/rest or http://[::1][:port]/rest, nothing else: no userinfo, no
# whitespace or control characters (urlsplit would quietly drop some), no fragment
_LOOPBACK_URI = re.compile(
    r"http://(?P<host>127(?:\.[0-9]{1,3}){3}|\[::1\])(?::(?P<port>[0-9]{1,5}))?(?P<rest>[^\x00-\x20\x7f#]*)"
)


def redirect_uri_matches(registered: str, given: str) -> bool:
    """Exact string match (RFC 9700 §4.1.3), except RFC 8252 §7.3 for loopback IP
    redirects: "The authorization server MUST allow any port to be specified at the time
    of the request for loopback IP redirect URIs". Only the port may differ: host, path
    and query must be the registered ones, character for character."""
    if registered == given:
        return True
    reg, req = _LOOPBACK_URI.fullmatch(registered), _LOOPBACK_URI.fullmatch(given)
    if reg is None or req is None or req["port"] is None or not 0 < int(req["port"]) < 65536:
        return False
    return (reg["host"], reg["rest"]) == (req["host"], req["rest"])


def check_redirect_uri(client: ClientSettings, params: Params) -> str:
    """OIDC Core §3.1.2.1: redirect_uri is REQUIRED."""
    given = params.get("redirect_uri")
    if given is None:
        raise OAuthError("invalid_request", "redirect_uri is missing")
    if not any(redirect_uri_matches(r, given) for r in client.redirect_uris):
        raise OAuthError("invalid_request", "redirect_uri is not registered for this client")
    return given


def check_native_callback_uri(client: ClientSettings, params: Params) -> str:
    """draft-zehavi-oauth-app2app-browserless §3.4: native_callback_uri is REQUIRED; it
    must be one the client registered (exact match), or any app could have the bank's
    answer handed to it (§5.2, open redirection)."""
    given = params.get("native_callback_uri")
    if given is None:
        raise OAuthError("invalid_request", "native_callback_uri is missing")
    if given not in client.native_callback_uris:
        raise OAuthError(
            "invalid_request", "native_callback_uri is not registered for this client"
        )
    return given


# --- checks whose failures are redirected to the verified redirect_uri ---------------

Check = Callable[[ClientSettings, Params], None]


def check_parameter_lengths(client: ClientSettings, params: Params) -> None:
    check_lengths(params)


# CIBA Core §7.1, binding_message: "Because the various devices involved may have limited
# display abilities and the message is intending for visual inspection by the end-user,
# the binding_message value SHOULD be relatively short and use a limited set of plain
# text characters. The invalid_binding_message defined in Section 13 is used in the event
# that the binding_message is invalid or unacceptable for use in the context of the given
# request." Here: at most 64 characters; letters and digits of any script, the space,
# and a few punctuation marks. No control, format (bidi overrides, zero-width) or markup
# characters: what the bank app shows is what the merchant app shows.
BINDING_MESSAGE_MAX = 64
BINDING_MESSAGE_PUNCTUATION = frozenset(" .,:;-_+#/()!?'")


def check_binding_message(client: ClientSettings, params: Params) -> None:
    """CIBA §13: invalid_binding_message, "The binding message is invalid or unacceptable
    for use in the context of the given request." (HTTP 400)."""
    message = params.get("binding_message")
    if message is None:
        return
    fits = len(message) <= BINDING_MESSAGE_MAX and message.strip() == message
    if not fits or not all(_binding_character(c) for c in message):
        raise OAuthError(
            "invalid_binding_message",
            f"binding_message must be at most {BINDING_MESSAGE_MAX} letters, digits, "
            "spaces or . , : ; - _ + # / ( ) ! ? ' without leading or trailing space",
        )


def _binding_character(char: str) -> bool:
    return char in BINDING_MESSAGE_PUNCTUATION or unicodedata.category(char)[0] in "LN"


def check_device_info(client: ClientSettings, params: Params) -> None:
    """BankID's ``device_info`` (the seed, step 6): "a JSON-document, that will further be
    encoded in a URL-safe Base64 encoding", with the fields p, ma and mo; anything else is
    refused before a bank is called."""
    value = params.get("device_info")
    problem = device_info_problem(value) if value is not None else None
    if problem is not None:
        raise OAuthError("invalid_request", problem)


def check_response_type(client: ClientSettings, params: Params) -> None:
    if "response_type" not in params:
        raise OAuthError("invalid_request", "response_type is missing")
    if params["response_type"] != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code is supported")


def check_response_mode(client: ClientSettings, params: Params) -> None:
    if params.get("response_mode", "query") != "query":
        raise OAuthError("invalid_request", "only response_mode=query is supported")


def check_no_request_object(client: ClientSettings, params: Params) -> None:
    """OIDC Core §6: servers that do not support them answer request_not_supported /
    request_uri_not_supported."""
    if "request" in params:
        raise OAuthError("request_not_supported", "request objects are not supported")
    if "request_uri" in params:
        raise OAuthError("request_uri_not_supported", "request_uri is not supported here")


def check_scope(client: ClientSettings, params: Params) -> None:
    scope = params.get("scope", "").split()
    if "openid" not in scope:
        raise OAuthError("invalid_scope", "scope must include openid")
    unknown = sorted(set(scope) - set(client.scopes))
    if unknown:
        raise OAuthError("invalid_scope", "scope names a value this client is not registered "
                         "for", detail=f"unregistered scope values: {len(unknown)}")


_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def check_pkce(client: ClientSettings, params: Params) -> None:
    """PKCE S256 is required. RFC 7636 §4.3: code_challenge_method "Defaults to "plain"
    if not present in the request", so a missing method is plain, and refused; RFC 9700
    §2.1.1: "Authorization servers MUST support PKCE"."""
    if "code_challenge" not in params:
        raise OAuthError("invalid_request", "code_challenge is required (PKCE with S256)")
    if params.get("code_challenge_method") != "S256":
        raise OAuthError("invalid_request", "code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(params["code_challenge"]):
        raise OAuthError("invalid_request", "code_challenge must be a base64url SHA-256 hash")


def check_prompt(client: ClientSettings, params: Params) -> None:
    """OIDC Core §3.1.2.6: with prompt=none and no way to log in without the user, the
    answer is login_required; a bank login always needs the user."""
    prompt = params.get("prompt", "").split()
    if "none" in prompt:
        if len(prompt) > 1:
            raise OAuthError("invalid_request", "prompt=none cannot be combined")
        raise OAuthError("login_required", "a bank login needs the user")


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def check_resource(client: ClientSettings, params: Params) -> None:
    """RFC 8707 §2, resource: "Its value MUST be an absolute URI, as specified by Section
    4.3 of [RFC3986]. The URI MUST NOT include a fragment component." Failures are
    invalid_target: "The requested resource is invalid, missing, unknown, or malformed."
    (One value only: a repeated parameter is refused when the request is read.)"""
    resource = params.get("resource")
    if resource is None:
        return
    if "#" in resource:
        raise OAuthError("invalid_target", "resource must not include a fragment")
    if not _SCHEME.match(resource) or any(c.isspace() for c in resource):
        raise OAuthError("invalid_target", "resource must be an absolute URI")


def check_resource_known(servers: Iterable[ResourceServer], params: Params) -> None:
    """RFC 8707 §2.1: "If the authorization server fails to parse the provided value(s) or
    does not consider the resource(s) acceptable, it should reject the request with an
    error response using the error code invalid_target": acceptable is the audience of a
    configured resource server (the check needs the configuration, so it is not one of
    REDIRECTED_CHECKS; callers run it right after them)."""
    resource = params.get("resource")
    if resource is not None and resource not in {s.audience for s in servers}:
        raise OAuthError("invalid_target", "resource is not a resource server known here")


_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


def check_dpop_jkt(client: ClientSettings, params: Params) -> None:
    """RFC 9449 §10: "The value of the dpop_jkt authorization request parameter is the JWK
    Thumbprint [RFC7638] of the proof-of-possession public key using the SHA-256 hash
    function": 43 base64url characters."""
    jkt = params.get("dpop_jkt")
    if jkt is not None and not _JKT.fullmatch(jkt):
        raise OAuthError("invalid_request", "dpop_jkt must be a base64url SHA-256 thumbprint")


REDIRECTED_CHECKS: tuple[Check, ...] = (
    check_binding_message,
    check_parameter_lengths,
    check_device_info,
    check_response_type,
    check_response_mode,
    check_no_request_object,
    check_scope,
    check_pkce,
    check_prompt,
    check_resource,
    check_dpop_jkt,
)
