"""What aiohttp's HTTP parser refuses before any handler or middleware runs (malformed
request line or header, header too large), and the Server header, over a bare socket.

DESIGN.md: every 4xx/5xx is a JSON OAuth error on API paths or an HTML page on browser
paths, never plain text. aiohttp's own answer to these is plain text quoting the
request line, without the security headers, and its Server header names the Python and
aiohttp versions (proxy.web.server, proxy.web.responses). The timeouts of a served
instance are in tests/proxy/test_serve_connections.py.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp
import pytest
from structlog.testing import capture_logs

from proxy.web.responses import SERVER
from tests.flows.harness import PUBLIC, World
from tests.security.raw_http import Answer, Connection, request

# in every malformed request, where the parser will quote it back if it can: a
# code-shaped value that must appear in no answer and no log line
MARKER = "a2a_ac_MARKER0123456789"
OK_HEAD = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
MALFORMED = {
    "request line that is no HTTP": f"GET{MARKER} /\r\n\r\n",
    "unknown HTTP version": f"GET /callback/bank-a?code={MARKER} HTTP/9.9\r\nHost: a\r\n\r\n",
    "header without a colon": OK_HEAD + f"Bad Header {MARKER}\r\n\r\n",
    "control character in a header value": OK_HEAD + f"X-A: a\x01{MARKER}\r\n\r\n",
    "space before the colon": OK_HEAD + f"Authorization : Bearer {MARKER}\r\n\r\n",
    "request line too long": f"GET /authorize?state={MARKER}{'a' * 9000} HTTP/1.1\r\n\r\n",
    "header line too long": OK_HEAD + f"Authorization: Bearer {MARKER}{'a' * 9000}\r\n\r\n",
    "too many headers": OK_HEAD + "".join(f"X-{i}: {MARKER}\r\n" for i in range(200)) + "\r\n",
    "Content-Length and Transfer-Encoding together":
        "POST /token HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\ncode={MARKER}",
    "malformed chunk size": "POST /token HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                            f"\r\nZZ\r\ncode={MARKER}\r\n0\r\n\r\n",
}  # fmt: skip


def port_of(world: World) -> int:
    port = urlsplit(world.proxy.issuer).port
    assert port is not None
    return port


def assert_default_headers(answer: Answer | aiohttp.ClientResponse) -> None:
    headers = {k.lower(): v for k, v in answer.headers.items()}
    assert headers["server"] == SERVER == "app2app-proxy"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", MALFORMED)
async def test_a_request_the_parser_refuses_is_a_json_oauth_error(world: World, name: str
                                                                  ) -> None:  # fmt: skip
    connection = await Connection.open(port_of(world))
    with capture_logs() as logs:
        await connection.send(MALFORMED[name].encode("latin-1"))
        answer = await connection.answer()
        # the connection cannot carry another request: the server closes it
        await connection.closed_after(within=5)
    connection.close()
    assert answer.status == 400, answer.raw
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    assert answer.json() == {"error": "invalid_request",
                             "error_description": "the request is not valid HTTP"}
    assert_default_headers(answer)
    # nothing of the request in the answer or in the logs
    assert MARKER not in answer.raw.decode("latin-1")
    assert MARKER not in repr(logs)
    assert [e["event"] for e in logs if e["event"] == "unparsable_request"] == [
        "unparsable_request"]  # fmt: skip


async def test_after_a_refusal_the_next_connection_is_served(world: World) -> None:
    bad = await Connection.open(port_of(world))
    await bad.send(MALFORMED["header without a colon"].encode())
    assert (await bad.answer()).status == 400
    bad.close()
    good = await Connection.open(port_of(world))
    await good.send(request("GET", "/healthz"))
    answer = await good.answer()
    good.close()
    assert answer.status == 200 and answer.json() == {"status": "ok"}


async def test_every_answer_names_no_version_in_its_server_header(world: World) -> None:
    """RFC 9110 §10.2.4: "An origin server SHOULD NOT generate a Server header field
    containing needlessly fine-grained detail". aiohttp's default is
    "Python/3.11 aiohttp/3.x.y"."""
    proxy = world.proxy
    answers: list[aiohttp.ClientResponse] = []
    for path in ("/healthz", "/jwks", "/.well-known/openid-configuration", "/nope",
                 "/token"):  # fmt: skip
        resp = await proxy.http.get(f"{proxy.issuer}{path}")
        await resp.read()
        answers.append(resp)
    resp, _ = await proxy.authorize()
    answers.append(resp)  # a 302
    resp, _ = await proxy.authorize(client_id="nobody")
    answers.append(resp)  # an HTML error page
    answers.append(await proxy.post("/token", {"grant_type": "nope", "client_id": PUBLIC}))
    answers.append(await proxy.post("/introspect", {"token": "x"}))  # 401
    big = await proxy.http.post(f"{proxy.issuer}/token", data=b"x" * 70_000)  # 413
    await big.read()
    answers.append(big)
    assert sorted({a.status for a in answers}) == [200, 302, 400, 401, 404, 405, 413]
    for answer in answers:
        assert answer.headers.getall("Server") == [SERVER], (answer.url, answer.status)
        assert "aiohttp" not in str(answer.headers) and "Python" not in str(answer.headers)


async def test_a_client_gone_mid_body_is_an_oauth_error_in_the_logs(world: World) -> None:
    """The middleware reads the body first (proxy.web.forms.read_body); a client that
    closes the connection halfway is told apart from a bug: no 500, no traceback."""
    connection = await Connection.open(port_of(world))
    with capture_logs() as logs:
        await connection.send(b"POST /token HTTP/1.1\r\nHost: a\r\nContent-Type: application/"
                              b"x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncode=")
        await asyncio.sleep(0.2)
        connection.close()
        for _ in range(50):
            if any(e["event"] == "request" for e in logs):
                break
            await asyncio.sleep(0.05)
    errors = [e for e in logs if e["event"] in ("oauth_error", "unhandled_error")]
    assert [(e["event"], e["error"]) for e in errors] == [("oauth_error", "invalid_request")]
    assert errors[0]["detail"] == "the connection closed before the body was complete"
    assert [e["status"] for e in logs if e["event"] == "request"] == [400]
