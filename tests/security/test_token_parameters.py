"""Odd but grammatical token requests: each gets the OAuth error RFC 6749 names.

RFC 6749 §3.1 (and §3.2 for the token endpoint): "Parameters sent without a value MUST
be treated as if they were omitted from the request. The authorization server MUST
ignore unrecognized request parameters. Request and response parameters MUST NOT be
included more than once." Appendix B: the form is UTF-8. §2.3.1: client credentials
"can only be transmitted in the request-body and MUST NOT be included in the request
URI". Every answer is a JSON error of §5.2 whose description quotes nothing sent.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest

from proxy.config.settings import RateLimits
from tests.flows.harness import APP_REDIRECT, PUBLIC, Login, World, run_proxy
from tests.ports import free_port

FORM = "application/x-www-form-urlencoded"
MARK = "zq7marker"  # a value no fixed text holds: found in a description, it was echoed


def exchange_form(login: Login, **extra: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": login.code,
            "redirect_uri": APP_REDIRECT, "client_id": PUBLIC,
            "code_verifier": login.verifier, **extra}


async def send(world: World, body: bytes | str, content_type: str | None = FORM,
               query: str = "") -> tuple[int, dict[str, Any]]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    data = body.encode() if isinstance(body, str) else body
    url = f"{world.proxy.issuer}/token" + (f"?{query}" if query else "")
    async with world.proxy.http.post(url, data=data, headers=headers) as resp:
        assert resp.content_type == "application/json", await resp.text()
        assert resp.headers["Cache-Control"] == "no-store"
        answer: dict[str, Any] = await resp.json()
    if resp.status != 200:
        assert set(answer) == {"error", "error_description"}, answer
        assert MARK not in answer["error_description"], answer
    return resp.status, answer


async def error_of(world: World, body: bytes | str, content_type: str | None = FORM,
                   query: str = "") -> tuple[int, str]:
    status, answer = await send(world, body, content_type, query)
    return status, answer.get("error", "")


async def test_a_repeated_parameter_is_invalid_request_and_leaves_the_code_unused(
    world: World,
) -> None:
    login = await world.proxy.login()
    form = urlencode(exchange_form(login)) + f"&{MARK}=1&{MARK}=2"
    assert await error_of(world, form) == (400, "invalid_request")
    for name in ("grant_type", "code", "client_id", "code_verifier", "redirect_uri"):
        twice = urlencode(exchange_form(login)) + f"&{name}={MARK}"
        assert await error_of(world, twice) == (400, "invalid_request"), name
    # nothing was consumed: the well-formed request still gets its tokens
    status, answer = await send(world, urlencode(exchange_form(login)))
    assert status == 200 and answer["access_token"], answer


@pytest.mark.parametrize(("name", "expected"), [
    ("grant_type", (400, "invalid_request")),  # as if omitted: grant_type is missing
    ("code", (400, "invalid_request")),
    ("code_verifier", (400, "invalid_request")),
    ("redirect_uri", (400, "invalid_grant")),  # omitted, it differs from the request's
    ("client_id", (401, "invalid_client")),
])
async def test_an_empty_value_counts_as_omitted(world: World, name: str,
                                                expected: tuple[int, str]) -> None:
    login = await world.proxy.login()
    assert await error_of(world, urlencode(exchange_form(login, **{name: ""}))) == expected


async def test_an_empty_unknown_parameter_is_ignored(world: World) -> None:
    login = await world.proxy.login()
    status, answer = await send(world, urlencode(exchange_form(login, **{MARK: ""})) + "&&")
    assert status == 200, answer


@pytest.mark.parametrize("where", ["same name", "other name", "credential"])
async def test_parameters_in_the_url_are_refused(world: World, where: str) -> None:
    login = await world.proxy.login()
    query = {"same name": f"code={MARK}", "other name": f"{MARK}=1",
             "credential": f"client_secret={MARK}"}[where]
    assert await error_of(world, urlencode(exchange_form(login)), query=query) == (
        400, "invalid_request")
    status, answer = await send(world, urlencode(exchange_form(login)))
    assert status == 200, answer


@pytest.mark.parametrize("content_type", [
    FORM, f"{FORM}; charset=UTF-8", f"{FORM};charset=utf-8", "Application/X-WWW-Form-URLEncoded",
    # Apache HttpClient's UrlEncodedFormEntity declares ISO-8859-1 by default; an ASCII
    # form reads the same in any charset, and RFC 6749 Appendix B makes it UTF-8 anyway
    f"{FORM}; charset=ISO-8859-1", f"{FORM}; charset=no-such-charset", f"{FORM}; q=1",
])
async def test_valid_content_types_and_charsets(world: World, content_type: str) -> None:
    login = await world.proxy.login()
    status, answer = await send(world, urlencode(exchange_form(login)), content_type)
    assert status == 200, answer


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/json", "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded-x", "application/octet-stream",
])
async def test_other_content_types_are_invalid_request(world: World,
                                                       content_type: str | None) -> None:
    login = await world.proxy.login()
    body = urlencode(exchange_form(login))
    assert await error_of(world, body, content_type) == (400, "invalid_request")


@pytest.mark.parametrize("body", [
    b"grant_type=authorization_code&code=\xff\xfe",      # raw bytes that are not UTF-8
    b"grant_type=authorization_code&code=%FF%FE",        # percent-encoded, not UTF-8
    b"grant_type=authorization_code&code=%ED%A0%80",     # an encoded UTF-16 surrogate
    b"grant_type=authorization_code&code\xc3=1",
], ids=["raw", "percent", "surrogate", "raw name"])
@pytest.mark.parametrize("content_type", [FORM, f"{FORM}; charset=no-such-charset",
                                          f"{FORM}; charset=ISO-8859-1"])
async def test_a_form_that_is_not_utf8_is_invalid_request(world: World, body: bytes,
                                                         content_type: str) -> None:
    assert await error_of(world, body + b"&client_id=" + PUBLIC.encode(), content_type) == (
        400, "invalid_request")


@pytest.mark.parametrize("grant_type", ["Authorization_Code", "AUTHORIZATION_CODE",
                                        "authorization_code ", " refresh_token",
                                        "refresh_token\x00", "authorizati\u03bfn_code",
                                        "implicit", "password", "client_credentials",
                                        "urn:ietf:params:oauth:grant-type:jwt-bearer"])
async def test_grant_types_are_matched_exactly(world: World, grant_type: str) -> None:
    """RFC 6749 §5.2 unsupported_grant_type: "The authorization grant type is not
    supported by the authorization server" (values are case-sensitive, §3.3, §4)."""
    login = await world.proxy.login()
    body = urlencode(exchange_form(login, grant_type=grant_type))
    assert await error_of(world, body) == (400, "unsupported_grant_type")


@pytest.mark.parametrize("name", ["code", "code_verifier", "redirect_uri", "refresh_token",
                                  "scope", "resource", "client_id"])
@pytest.mark.parametrize("value", ["\u00e9" * 40, "\U0001f4a5", "a" * 60_000, "\u202e" + MARK,
                                   MARK + "\r\n" + MARK, MARK + '"><script>'])
async def test_unicode_and_long_values_are_oauth_errors(world: World, name: str,
                                                        value: str) -> None:
    login = await world.proxy.login()
    form = exchange_form(login, **{name: value})
    if name in ("refresh_token", "scope"):
        form = {"grant_type": "refresh_token", "refresh_token": "a2a_rt_x",
                "client_id": PUBLIC, name: value}
    status, error = await error_of(world, "&".join(f"{k}={quote(v)}" for k, v in form.items()))
    assert 400 <= status < 500 and error in (
        "invalid_request", "invalid_grant", "invalid_client", "invalid_scope", "invalid_target",
    ), (status, error)


async def test_a_body_over_64_kib_is_413_json(world: World) -> None:
    status, error = await error_of(world, "code=" + "a" * 70_000)
    assert (status, error) == (413, "invalid_request")


async def test_a_get_with_the_parameters_in_the_url_is_405_json(world: World) -> None:
    login = await world.proxy.login()
    resp = await world.proxy.http.get(f"{world.proxy.issuer}/token",
                                      params=exchange_form(login))
    assert resp.status == 405 and (await resp.json())["error"] == "invalid_request"


@pytest.mark.parametrize("body", [b"=", b"&", b"=&=", b"%", b"%zz=1", b"a=%", b"+=+",
                                  b"grant_type", b"grant_type=authorization_code;code=x"])
async def test_malformed_forms_are_oauth_errors(world: World, body: bytes) -> None:
    status, error = await error_of(world, body + b"&client_id=" + PUBLIC.encode())
    assert status == 400 and error in ("invalid_request", "unsupported_grant_type"), error


async def test_one_request_with_aiohttp_defaults(world: World) -> None:
    """What most clients send: a dict form, aiohttp's own encoding."""
    login = await world.proxy.login()
    async with world.proxy.http.post(f"{world.proxy.issuer}/token",
                                     data=aiohttp.FormData(exchange_form(login))) as resp:
        assert resp.status == 200, await resp.text()


async def test_the_rate_limiter_reads_an_odd_form_the_same_way(world: World) -> None:
    """The per-client limit reads the claimed client_id from the form before the handler
    does: an undecodable form or an unknown charset is the handler's invalid_request."""
    port = free_port()
    config = dataclasses.replace(world.proxy.config,
                                 rate_limits=RateLimits(per_client={"token": 100}))
    await world.stack.enter_async_context(run_proxy(config, port))
    url = f"http://127.0.0.1:{port}/token"
    for content_type in (f"{FORM}; charset=no-such-charset", FORM):
        async with world.proxy.http.post(
            url, data=b"grant_type=x&client_id=" + PUBLIC.encode() + b"&code=\xff",
            headers={"Content-Type": content_type},
        ) as resp:
            assert resp.status == 400, await resp.text()
            assert (await resp.json())["error"] == "invalid_request"
