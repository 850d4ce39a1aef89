"""Every class of odd input at every endpoint's parameters, against a running proxy.

Each endpoint starts from requests that work (a seed: a fresh code, a bank callback, a
decoupled login's handle, tokens and credentials), and hypothesis changes one to three
of its parameters by a class of input:

- missing, repeated (same name twice), empty (RFC 6749 §3.1);
- oversized (up to the 64 KiB body limit, and over it: 413; URLs stay under aiohttp's
  8190-byte request line, which its parser refuses before the proxy sees anything);
- wrong type (JSON arrays, objects, numbers and booleans where a string is expected);
- not UTF-8 (raw bytes in the body, percent-encoded in the query, the body and the path);
- numbers that are not finite (NaN, Infinity, 1e400, 400 digits), as parameters and as
  the dates of a DPoP proof or a client assertion;
- other unicode (controls, RTL marks, emoji, combining marks, NUL);
- odd content types and charsets, parameters in the URL of a POST, odd Authorization,
  DPoP and Accept headers.

What must hold for every answer:
- never a 5xx (the store does not fail here) and never a hang (each request has a
  timeout);
- the documented shape: a JSON ``{"error", "error_description"}`` on back-channel
  endpoints (with ``WWW-Authenticate`` where RFC 6750 §3 or RFC 6749 §5.2 want it), an
  HTML page or a redirect to the registered redirect URI with ``error``, ``state`` and
  ``iss`` on browser endpoints, never plain text;
- no description echoes what was sent: every generated value carries a marker that
  no fixed text holds.

test_openapi.py fuzzes the same endpoints from docs/openapi.yaml (schemathesis); this
file chooses the classes of input itself and builds the bytes on the wire by hand, so
that repeated names, raw non-UTF-8 bytes and odd content types really reach the server.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, quote, quote_from_bytes, urlsplit

import jwt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.flows.harness import (
    ACR_A,
    ACR_C,
    APP,
    APP_REDIRECT,
    CONFIDENTIAL,
    CONFIDENTIAL_SECRET,
    JWT_CLIENT,
    JWT_CLIENT_KEY,
    NATIVE_CALLBACK,
    PUBLIC,
    RS_BANK,
    DPoPKey,
    World,
    WorldFactory,
    new_request,
    query_of,
)
from tests.flows.own_apps import (
    WALLET,
    DeviceKey,
    ShopRequest,
    approval_form,
    challenge,
    exchange_form,
    own_apps,
    wallet_login,
)

MARK = "zq7"  # in every generated value; no fixed text of the proxy holds it
FORM = "application/x-www-form-urlencoded"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TIMEOUT = 10.0
EXAMPLES = 60  # per endpoint
# RFC 6749 §5.2: error = 1*( %x20-21 / %x23-5B / %x5D-7E )
ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 400]
NON_UTF8 = [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]
CONTENT_TYPES = [
    None, "text/plain", "application/json", "multipart/form-data; boundary=zq7",
    f"{FORM}; charset=ISO-8859-1", f"{FORM}; charset=zq7-no-such", f"{FORM};;;",
    "APPLICATION/X-WWW-FORM-URLENCODED", f"{FORM}, text/plain", f"{FORM}; charset=utf-16",
    "application/octet-stream", "",
]  # fmt: skip
AUTHORIZATIONS = [
    f"Basic {MARK}!!!", "Bearer", "Bearer ", f"Bearer {MARK} x", f"DPoP {MARK}",
    "Basic " + base64.b64encode(f"{MARK}:\u00e9".encode()).decode(), "basic Og==",
    f"Digest {MARK}", "Basic " + base64.b64encode(MARK.encode() + b"\xff:x").decode(), MARK,
]  # fmt: skip

Value = str | bytes
Pairs = list[tuple[str, Value]]


@dataclass
class Req:
    """A request, as the bytes it will be: parameters may repeat, values may be bytes."""

    method: str
    path: str
    query: Pairs = field(default_factory=list)
    body: Pairs | None = None
    raw_body: bytes | None = None  # sent as is, instead of ``body``
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = FORM
    raw_pairs: bool = False  # bytes values go in unencoded (a body that is not UTF-8)

    @property
    def browser(self) -> bool:
        return self.path.startswith(("/authorize", "/callback/", "/resume/")) and not (
            self.path.startswith("/authorize/status/"))


def encode(pairs: Pairs, raw: bool = False) -> bytes:
    parts = []
    for name, value in pairs:
        data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        encoded = data if raw and isinstance(value, bytes) else quote_from_bytes(data).encode()
        parts.append(quote(name).encode() + b"=" + encoded)
    return b"&".join(parts)


def send(port: int, req: Req) -> tuple[int, dict[str, str], bytes]:
    target = req.path + ("?" + encode(req.query).decode() if req.query else "")
    headers = dict(req.headers)
    body: bytes | None = None
    if req.method == "POST":
        body = req.raw_body if req.raw_body is not None else encode(req.body or [],
                                                                    req.raw_pairs)
        if req.content_type is not None:
            headers["Content-Type"] = req.content_type
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(req.method, target, body=body, headers=headers)
        resp = connection.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        connection.close()


# -- the checks -----------------------------------------------------------------------


def check(req: Req, status: int, headers: dict[str, str], body: bytes) -> None:
    where = f"{req.method} {req.path}"
    ctype = headers.get("content-type", "")
    assert status < 500, f"{where}: {status} {body[:300]!r}"
    assert not ctype.startswith("text/plain"), f"{where}: plain text {status} {body[:200]!r}"
    if status in (429, 503):
        assert "retry-after" in headers
    if 300 <= status < 400:
        location = headers["location"]
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if "error" in params and location.startswith(APP_REDIRECT):
            # RFC 9207 §2: iss with every authorization response, errors included
            assert "iss" in params, location
            assert ERROR_CODE.fullmatch(params["error"]), location
            assert MARK not in params.get("error_description", ""), location
        return
    if status < 400:
        return
    if ctype.startswith("application/json"):
        answer = json.loads(body)
        assert isinstance(answer, dict) and set(answer) == {"error", "error_description"}, (
            where, answer)
        error, description = answer["error"], answer["error_description"]
        assert isinstance(error, str) and ERROR_CODE.fullmatch(error), (where, answer)
        assert isinstance(description, str) and "\n" not in description, (where, answer)
        assert MARK not in description, (where, answer)
        assert error != "server_error", (where, answer)
        if req.path.startswith("/userinfo") and status in (400, 401, 403):
            # RFC 6750 §3: "the resource server includes the HTTP WWW-Authenticate
            # response header field"
            assert "www-authenticate" in headers, (where, status, answer)
        if req.path.startswith("/gateway/") and status in (401, 403):
            # the challenge the gateway passes on to its caller; its own errors are 400
            assert "www-authenticate" in headers, (where, status, answer)
        if status == 401 and req.headers.get("Authorization", "").lower().startswith(
            "basic "
        ) and not req.path.startswith(("/userinfo", "/gateway/")):
            # RFC 6749 §5.2: a 401 "MUST ... include the WWW-Authenticate response header
            # field matching the authentication scheme used by the client"
            assert headers.get("www-authenticate", "").startswith("Basic"), (where, answer)
    elif ctype.startswith("text/html"):
        assert req.browser, f"{where}: HTML on a back-channel endpoint"
        assert MARK.encode() not in body, f"{where}: the error page quotes the request"
    else:
        pytest.fail(f"{where}: {status} {ctype}: {body[:200]!r}")


# -- what hypothesis changes ------------------------------------------------------------

texts = st.text(max_size=12)
unicode_values = st.sampled_from([
    "\u202e", "\u200b", "\x00", "\x1b[31m", "\r\n", "\U0001f4a5", "e\u0301", "\ufeff",
    "\ud7ff", "\uffff", "\u0130", "\t", " ", "%", "%zz", "+", "&=", "..", "/",
]) | texts


@st.composite
def odd_value(draw: st.DrawFn, kind: str, *, in_body: bool) -> Value:
    if kind == "oversized":
        # (in the URL at most three times 1800 with the rest: aiohttp's parser answers a
        # request line over 8190 bytes itself, in plain text, before any middleware;
        # tests/flows/test_odd_input.py::header_safe)
        sizes = [1_000, 1_800] + ([20_000, 60_000, 70_000] if in_body else [])
        return MARK + "a" * draw(st.sampled_from(sizes))
    if kind == "wrong type":
        return draw(st.sampled_from([f'["{MARK}"]', f'{{"{MARK}": 1}}', f"{MARK}=1",
                                     f"[{MARK}, 1]", f"{MARK}\x00"]))
    if kind == "non-finite":
        return draw(st.sampled_from(NON_FINITE))
    if kind == "non-UTF-8":
        return MARK.encode() + draw(st.sampled_from(NON_UTF8))
    return MARK + draw(unicode_values)  # "unicode", "repeated"


KINDS = ["missing", "repeated", "empty", "oversized", "wrong type", "non-UTF-8",
         "non-finite", "unicode"]


def _pairs_of(req: Req, location: str) -> Pairs:
    return req.query if location == "query" else (req.body or [])


@st.composite
def mutated(draw: st.DrawFn, seed: Req, header_kinds: list[str]) -> Req:
    """``seed`` with one to three changes."""
    req = replace(seed, query=list(seed.query),
                  body=None if seed.body is None else list(seed.body),
                  headers=dict(seed.headers))
    locations = ["query"] if req.method == "GET" else ["body"]
    steps = draw(st.integers(1, 3), label="changes")
    for _ in range(steps):
        change = draw(st.sampled_from(KINDS + header_kinds + (
            ["content type", "query on POST", "raw non-UTF-8 body"]
            if req.method == "POST" else [])), label="class")
        if change == "content type":
            req.content_type = draw(st.sampled_from(CONTENT_TYPES), label="content type")
            continue
        if change == "query on POST":
            req.query.append((draw(st.sampled_from(["client_id", "code", MARK])),
                              MARK + draw(texts)))
            continue
        if change == "raw non-UTF-8 body":
            req.raw_pairs = True
            (req.body or []).append((draw(st.sampled_from(["code", "client_id", MARK])),
                                     MARK.encode() + draw(st.sampled_from(NON_UTF8))))
            continue
        if change in HEADER_CHANGES:
            HEADER_CHANGES[change](draw, req)
            continue
        location = draw(st.sampled_from(locations))
        pairs = _pairs_of(req, location)
        names = [name for name, _ in pairs] + [MARK + "extra"]
        name = draw(st.sampled_from(names), label="parameter")
        in_body = location == "body"
        if change == "missing":
            pairs[:] = [(n, v) for n, v in pairs if n != name]
        elif change == "repeated":
            same = [v for n, v in pairs if n == name]
            again = same[0] if same and draw(st.booleans()) else draw(
                odd_value("unicode", in_body=in_body))
            pairs.append((name, again))
        elif change == "empty":
            pairs[:] = [(n, "" if n == name else v) for n, v in pairs] + (
                [] if name in (n for n, _ in pairs) else [(name, "")])
        else:
            value = draw(odd_value(change, in_body=in_body), label=change)
            pairs[:] = [(n, v) for n, v in pairs if n != name] + [(name, value)]
    return req


def _authorization(draw: st.DrawFn, req: Req) -> None:
    req.headers["Authorization"] = draw(st.sampled_from(AUTHORIZATIONS), label="Authorization")


def _accept(draw: st.DrawFn, req: Req) -> None:
    req.headers["Accept"] = draw(st.sampled_from([
        "text/html, */*", "application/json", "application/token-introspection+jwt",
        f"{MARK}/{MARK}", "*/*;q=0", "",
    ]), label="Accept")


def raw_jwt(key: DPoPKey, header: dict[str, Any], payload: str) -> str:
    private = jwt.PyJWK(key.key.export(private_key=True, as_dict=True), algorithm=key.alg)
    return jwt.api_jws.encode(payload.encode(), private.key, algorithm=key.alg,
                              headers=header)


PROOF_KEY = DPoPKey.generate()


def _dpop(draw: st.DrawFn, req: Req) -> None:
    """A DPoP proof whose date is no finite number, or that is no JWT at all."""
    claim = draw(st.sampled_from(["iat", "exp", "nbf"]), label="dpop claim")
    value = draw(st.sampled_from([*NON_FINITE, "true", '"1"', "null", "[]"]), label="dpop date")
    fields = {"jti": uuid.uuid4().hex, "htm": req.method, "htu": f"http://x{req.path}",
              "iat": int(time.time())}
    body = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in fields.items() if k != claim)
    proof = raw_jwt(PROOF_KEY, {"typ": "dpop+jwt", "jwk": PROOF_KEY.public_jwk},
                    "{" + body + f', "{claim}": {value}' + "}")
    req.headers["DPoP"] = draw(st.sampled_from([proof, MARK, f"{MARK}.{MARK}.{MARK}"]))


ASSERTION_KEY = DPoPKey(JWT_CLIENT_KEY, "ES256")


def _assertion(draw: st.DrawFn, req: Req) -> None:
    """A client assertion (RFC 7523) of JWT_CLIENT whose date is no finite number."""
    claim = draw(st.sampled_from(["exp", "iat", "nbf"]), label="assertion claim")
    value = draw(st.sampled_from([*NON_FINITE, "true", '"1"']), label="assertion date")
    now = int(time.time())
    fields = {"iss": JWT_CLIENT, "sub": JWT_CLIENT, "aud": "http://127.0.0.1", "iat": now,
              "exp": now + 60, "jti": uuid.uuid4().hex}
    body = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in fields.items() if k != claim)
    signed = raw_jwt(ASSERTION_KEY, {"kid": "backend-1"},
                     "{" + body + f', "{claim}": {value}' + "}")
    pairs = [(n, v) for n, v in (req.body or []) if n not in ("client_id", "client_secret")]
    req.body = [*pairs, ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", signed)]
    req.headers.pop("Authorization", None)


def _gateway(draw: st.DrawFn, req: Req) -> None:
    """The gateway's own headers: its credentials and the request it names."""
    name = draw(st.sampled_from(["Gateway-Authorization", "X-Forwarded-Method",
                                 "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Uri"]),
                label="gateway header")
    value = draw(st.sampled_from(AUTHORIZATIONS) | st.sampled_from([
        MARK, f"/{MARK} x", f"{MARK}\u00e9", f"{MARK}:1,{MARK}", "", f"a{MARK}/b", "javascript",
    ]), label="gateway value")
    req.headers[name] = value


HEADER_CHANGES: dict[str, Callable[[st.DrawFn, Req], None]] = {
    "Authorization": _authorization, "Accept": _accept, "DPoP": _dpop,
    "client assertion": _assertion, "Gateway": _gateway,
}


# -- seeds: requests that work ------------------------------------------------------------


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def pairs(params: dict[str, str]) -> Pairs:
    return list(params.items())


async def code_exchange(world: World) -> Req:
    login = await world.proxy.login()
    return Req("POST", "/token", body=pairs({
        "grant_type": "authorization_code", "code": login.code, "redirect_uri": APP_REDIRECT,
        "client_id": PUBLIC, "code_verifier": login.verifier}))


async def confidential_exchange(world: World) -> Req:
    login = await world.proxy.login(client_id=CONFIDENTIAL)
    return Req("POST", "/token", headers={"Authorization": basic(CONFIDENTIAL,
                                                                 CONFIDENTIAL_SECRET)},
               body=pairs({"grant_type": "authorization_code", "code": login.code,
                           "redirect_uri": APP_REDIRECT, "code_verifier": login.verifier}))


async def refresh(world: World) -> Req:
    tokens = await world.proxy.tokens()
    return Req("POST", "/token", body=pairs({
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": PUBLIC, "scope": "openid profile"}))


async def bank_callback(world: World) -> Req:
    resp, _ = await world.proxy.authorize(acr_values=ACR_A)
    bank = await world.proxy.http.get(resp.headers["Location"], allow_redirects=False)
    return Req("GET", "/callback/bank-a", query=pairs(query_of(bank.headers["Location"])))


async def decoupled(world: World, path: str) -> Req:
    world.ciba.ciba_decision = None
    resp, _ = await world.proxy.authorize_pushed(acr_values=ACR_C, login_hint="alice")
    handle = resp.headers["Location"].rsplit("/", 1)[1]
    return Req("GET", f"{path}/{handle}")


async def with_tokens(world: World, build: Callable[[dict[str, Any]], Req]) -> Req:
    return build(await world.proxy.tokens())


def authorization_request(method: str) -> Callable[[World], Awaitable[Req]]:
    async def build(world: World) -> Req:
        params = pairs(new_request(acr_values=ACR_A)[1])
        if method == "GET":
            return Req("GET", "/authorize", query=params)
        return Req("POST", "/authorize", body=params)
    return build


async def native_request(world: World) -> Req:
    params = new_request(client_id=APP, native_callback_uri=NATIVE_CALLBACK, acr_values=ACR_A)
    return Req("POST", "/native/authorize", body=pairs(params[1]))


async def pushed_request(world: World) -> Req:
    return Req("POST", "/par", headers={"Authorization": basic(CONFIDENTIAL,
                                                               CONFIDENTIAL_SECRET)},
               body=pairs(new_request(client_id=CONFIDENTIAL, acr_values=ACR_A)[1]))


async def introspection(world: World) -> Req:
    return await with_tokens(world, lambda t: Req(
        "POST", "/introspect", headers={"Authorization": basic(*RS_BANK)},
        body=pairs({"token": t["access_token"], "token_type_hint": "access_token"})))


async def gateway_check(world: World) -> Req:
    """A gateway's check (docs/gateways.md): the caller's token in Authorization, the
    gateway's credentials and the original request in headers of their own."""
    return await with_tokens(world, lambda t: Req(
        "GET", "/gateway/check", headers={
            "Authorization": f"Bearer {t['access_token']}",
            "Gateway-Authorization": basic(*RS_BANK), "X-Forwarded-Method": "GET",
            "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.merchant.example",
            "X-Forwarded-Uri": "/orders/7"}))


async def revocation(world: World) -> Req:
    return await with_tokens(world, lambda t: Req(
        "POST", "/revoke", body=pairs({"token": t["refresh_token"], "client_id": PUBLIC,
                                       "token_type_hint": "refresh_token"})))


async def userinfo_get(world: World) -> Req:
    return await with_tokens(world, lambda t: Req(
        "GET", "/userinfo", headers={"Authorization": f"Bearer {t['access_token']}"}))


async def userinfo_post(world: World) -> Req:
    return await with_tokens(world, lambda t: Req(
        "POST", "/userinfo", body=pairs({"access_token": t["access_token"]})))


async def _own_apps(world: World) -> tuple[DeviceKey, dict[str, Any]]:
    """The world with the wallet and the shop, and the wallet's login (device key bound,
    device_sso), made once."""
    if "wallet" not in world.extra:
        own_apps(world)
        key = DeviceKey.generate()
        world.extra["wallet"] = (key, await wallet_login(world.proxy, key))
    found: tuple[DeviceKey, dict[str, Any]] = world.extra["wallet"]
    return found


async def challenge_request(world: World) -> Req:
    await _own_apps(world)
    return Req("POST", "/challenge", body=pairs({"client_id": WALLET}))


async def approval(world: World) -> Req:
    key, wallet = await _own_apps(world)
    device_jwt = key.sign(await challenge(world.proxy), "approve")
    return Req("POST", "/token", body=pairs(approval_form(wallet["refresh_token"],
                                                          device_jwt, ShopRequest())))


async def native_sso(world: World) -> Req:
    _, wallet = await _own_apps(world)
    return Req("POST", "/token", body=pairs(exchange_form(wallet["id_token"],
                                                         wallet["device_secret"])))


CLIENT_AUTH = ["Authorization", "client assertion"]
ENDPOINTS: dict[str, tuple[Callable[[World], Awaitable[Req]], list[str]]] = {
    "GET /authorize": (authorization_request("GET"), ["Accept"]),
    "POST /authorize": (authorization_request("POST"), ["Accept"]),
    "POST /native/authorize": (native_request, ["Accept"]),
    "POST /par": (pushed_request, [*CLIENT_AUTH, "DPoP"]),
    "POST /token authorization_code": (code_exchange, [*CLIENT_AUTH, "DPoP", "Accept"]),
    "POST /token authorization_code confidential": (confidential_exchange,
                                                    [*CLIENT_AUTH, "DPoP"]),
    "POST /token refresh_token": (refresh, [*CLIENT_AUTH, "DPoP"]),
    "POST /introspect": (introspection, [*CLIENT_AUTH, "Accept"]),
    "POST /revoke": (revocation, CLIENT_AUTH),
    "POST /challenge": (challenge_request, CLIENT_AUTH),
    "POST /token app2app": (approval, [*CLIENT_AUTH, "DPoP"]),
    "POST /token token-exchange": (native_sso, [*CLIENT_AUTH, "DPoP"]),
    "GET /gateway/check": (gateway_check, ["Authorization", "DPoP", "Gateway"]),
    "GET /userinfo": (userinfo_get, ["Authorization", "DPoP"]),
    "POST /userinfo": (userinfo_post, ["Authorization", "DPoP"]),
    "GET /callback/{bank_id}": (bank_callback, ["Accept"]),
    "GET /resume/{handle}": (lambda w: decoupled(w, "/resume"), ["Accept"]),
    "GET /authorize/status/{handle}": (lambda w: decoupled(w, "/authorize/status"),
                                       ["Accept"]),
}


@st.composite
def odd_path(draw: st.DrawFn, path: str) -> str:
    """The last path segment (a handle, a bank id) changed."""
    head, _, _ = path.rpartition("/")
    segment = draw(st.sampled_from([
        quote(MARK + "\u00e9\U0001f4a5"), f"{MARK}%FF%FE", f"{MARK}%00", MARK * 500,
        f"{MARK}%2F..", f"{MARK}%20", quote(MARK + "\u202e"), "NaN", "1e400",
    ]), label="path segment")
    return f"{head}/{segment}"


def fuzz(label: str, port: int, seed: Callable[[], Req]) -> None:
    _, header_kinds = ENDPOINTS[label]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        req = data.draw(mutated(seed(), header_kinds), label="request")
        if "{" in label and data.draw(st.booleans(), label="odd path"):
            req.path = data.draw(odd_path(req.path))
        check(req, *send(port, req))

    run()


@pytest.mark.parametrize("label", sorted(ENDPOINTS))
async def test_odd_input_gets_a_documented_oauth_error(world_factory: WorldFactory,
                                                       label: str) -> None:
    world: World = await world_factory(ciba=True)
    world.ciba.ciba_interval = 1  # a browser-less /resume holds about one interval
    build, _ = ENDPOINTS[label]
    loop = asyncio.get_running_loop()
    port = int(urlsplit(world.proxy.issuer).port or 0)

    def seed() -> Req:
        """A fresh working request, made on the proxy's loop (this runs in a thread)."""
        return asyncio.run_coroutine_threadsafe(build(world), loop).result(TIMEOUT)

    first = await build(world)
    status, _, body = await asyncio.to_thread(send, port, first)
    assert status < 400, (label, status, body[:300])  # the seed itself works
    await asyncio.to_thread(fuzz, label, port, seed)
