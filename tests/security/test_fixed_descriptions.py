"""docs/security.md: "error descriptions are fixed texts: nothing from the request".

Read from the source: every description handed to an OAuth error (``OAuthError``, a
bank's ``BankError``, and the helpers that build them) in ``proxy/`` and ``federation/``
is a literal, or a formatted text of values that are not the request's (constants,
the configuration); a new formatted description must be added to ``ALLOWED`` here, by
someone who decided it quotes nothing a client sent. Details go to the log
(``detail=``). What clients actually receive is checked in tests/security/test_inputs.py
and test_token_parameters.py (no description echoes a value sent).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.harness import ACR_A, APP_REDIRECT, World, new_request, query_of

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(ROOT.glob("proxy/**/*.py")) + sorted(ROOT.glob("federation/*.py"))

# function -> the position of its description argument
BUILDERS = {
    "OAuthError": 1, "BankError": 1, "error": 2,  # proxy.oauth.dpop.error(svc, code, description)
    "invalid_grant": 0, "invalid_client": 0, "_invalid": 0, "invalid": 0, "_Refused": 0,
    "_invalid_token": 0, "Refused": 0, "_required": 2, "invalid_token": 0,
}
# (module, expression inside the formatted description): values that are not input
ALLOWED = {
    ("proxy/web/forms.py", "FORM"),
    ("proxy/oauth/client_assertion.py", "JWT_BEARER"),
    ("proxy/oauth/client_assertion.py", "', '.join(algs)"),  # ALGS or FAPI2_ALGS
    ("proxy/oauth/client_assertion.py", "MAX_LIFETIME"),
    ("proxy/oauth/dpop.py", "' '.join(algs)"),
    ("proxy/oauth/dpop.py", "MIN_RSA_BITS"),
    ("proxy/oauth/dpop.py", "IAT_WINDOW"),
    ("proxy/oauth/dpop.py", "MAX_JTI"),
    ("proxy/oauth/dpop.py", "server"),  # "Authorization server" or "Resource server"
    ("proxy/oauth/dpop.py", "noun"),  # "proof" or "device key" (public_key's callers)
    ("proxy/oauth/device_key.py", "TYP"),
    ("proxy/oauth/device_key.py", "' '.join(ALGS)"),
    ("proxy/oauth/device_key.py", "IAT_WINDOW"),
    ("proxy/oauth/own_apps.py", "ID_TOKEN_TYPE"),
    ("proxy/oauth/own_apps.py", "DEVICE_SECRET_TYPE"),
    ("proxy/oauth/own_apps.py", "ACCESS_TOKEN_TYPE"),
    ("proxy/login/start.py", "bank.display_name"),  # the config's bank name
    ("proxy/web/ratelimit.py", "reset_in"),  # seconds, counted by the store
    ("federation/ciba.py", "code"),  # one of DENIED_ERRORS, a fixed set
    ("federation/bankid.py", "code"),  # one of DENIED_ERRORS, a fixed set
    ("federation/rar.py", "bank.display_name"),  # the config's bank name
    # a parameter name from PARAMETER_LIMITS or a bank's pass_through (the config): the
    # request's parameters are filtered by known_parameters before any check reads them
    ("proxy/oauth/authorize_checks.py", "name"),
    ("proxy/oauth/authorize_checks.py", "BINDING_MESSAGE_MAX"),
}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _description(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "description":
            return keyword.value
    position = BUILDERS[_name(call.func)]
    return call.args[position] if len(call.args) > position else None


def _interpolated(node: ast.expr) -> Iterator[ast.expr]:
    """The parts of a text built at run time that are not literals. A plain name or
    attribute is passed through (a helper's own ``description`` parameter, a BankError's
    description, a module constant): its origin is checked where it is built."""
    if isinstance(node, ast.JoinedStr):
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                yield value.value
    elif isinstance(node, ast.BinOp):  # "a" + x, "%s" % x
        for side in (node.left, node.right):
            if not isinstance(side, ast.Constant):
                yield from (_interpolated(side) if isinstance(side, ast.JoinedStr | ast.BinOp)
                            else [side])
    elif isinstance(node, ast.Call) and _name(node.func) == "format":
        yield from node.args
        yield from (k.value for k in node.keywords)
    elif isinstance(node, ast.Call):  # str(exc): a library's text may quote its input
        yield node
    elif isinstance(node, ast.BoolOp):  # str(exc) or "..."
        for value in node.values:
            yield from _interpolated(value)
    elif isinstance(node, ast.IfExp):
        yield from _interpolated(node.body)
        yield from _interpolated(node.orelse)


def formatted_descriptions() -> list[tuple[str, int, str]]:
    found = []
    for path in SOURCES:
        module = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _name(node.func) in BUILDERS:
                description = _description(node)
                for part in _interpolated(description) if description is not None else ():
                    found.append((module, node.lineno, ast.unparse(part)))
    return found


def test_descriptions_interpolate_only_what_the_request_cannot_choose() -> None:
    quoted = [f"{module}:{line}: {{{expr}}}" for module, line, expr in formatted_descriptions()
              if (module, expr) not in ALLOWED]
    assert quoted == [], "descriptions built from values a client may choose:\n" + "\n".join(
        quoted)


def test_the_allow_list_names_only_what_is_there() -> None:
    present = {(module, expr) for module, _, expr in formatted_descriptions()}
    assert ALLOWED <= present, ALLOWED - present


MARK = "zq7marker"


async def test_an_unregistered_scope_is_not_quoted_back(world: World) -> None:
    resp, _ = await world.proxy.authorize(scope=f"openid {MARK}", acr_values=ACR_A)
    location = resp.headers["Location"]
    assert location.startswith(APP_REDIRECT)
    params = query_of(location)
    assert params["error"] == "invalid_scope"
    assert MARK not in params["error_description"]
    _, form = new_request(scope=f"openid {MARK}")
    pushed = await world.proxy.post("/par", form)
    body = await pushed.json()
    assert (pushed.status, body["error"]) == (400, "invalid_scope")
    assert MARK not in body["error_description"]


@pytest.mark.parametrize("path", ["/token", "/par", "/revoke", "/introspect", "/userinfo",
                                  "/native/authorize"])
async def test_a_repeated_parameter_is_not_quoted_back(world: World, path: str) -> None:
    resp = await world.proxy.http.post(
        f"{world.proxy.issuer}{path}", data=f"{MARK}=1&{MARK}=2&client_id=x",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": "Bearer a2a_at_x"} if path == "/userinfo" else
        {"Content-Type": "application/x-www-form-urlencoded"})
    body = await resp.json()
    assert body["error"] == "invalid_request", body
    assert MARK not in body["error_description"]
