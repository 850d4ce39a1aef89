"""The merchant backend's calls to the proxy, each kept as a hop with its answer, and
the JWTs it receives decoded and checked against the proxy's /jwks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import jwt

from proxy.config.settings import ClientSettings, Config
from proxy.ops.playground.html import masked
from proxy.ops.playground.trace import Hop

JWT_INTROSPECTION = "application/token-introspection+jwt"
BACKEND = "Demo Shop backend → proxy"
APP = "Demo Shop app → proxy"


@dataclass(frozen=True)
class Decoded:
    """A JWT as the playground shows it: header, claims, and what checking it found."""

    header: dict[str, Any]
    claims: dict[str, Any]
    check: str


class Backend:
    def __init__(self, config: Config, client: ClientSettings, http: aiohttp.ClientSession):
        self.config = config
        self.client = client
        self.http = http
        self.basic = (client.client_id, client.client_secret or "")

    @property
    def issuer(self) -> str:
        return self.config.issuer

    async def call(
        self, hops: list[Hop], method: str, path_or_url: str, form: dict[str, str] | None = None,
        *, auth: tuple[str, str] | None = None, accept: str | None = None,
        bearer: str | None = None, who: str = BACKEND, note: str = "",
    ) -> tuple[int, Any]:
        """One request; its hop (the form masked, the answer as JSON, masked, or text)."""
        url = path_or_url if "://" in path_or_url else self.issuer + path_or_url
        headers = {"Accept": accept} if accept else {}
        shown = masked(form or {})
        if auth is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
            shown["Authorization"] = f"Basic base64({auth[0]}:••••)"
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
            shown["Authorization"] = masked(headers)["Authorization"]
        if accept:
            shown["Accept"] = accept
        hop = Hop(who, method, url.split("?")[0], shown, note=note)
        if method == "GET" and "?" in url:
            hop.params = {**masked(dict(parse_qsl(urlsplit(url).query))), **shown}
        hops.append(hop)
        async with self.http.request(method, url, data=form, headers=headers,
                                     allow_redirects=False) as resp:
            text = await resp.text()
            hop.status = resp.status
            answer: Any = text
            if resp.content_type == "application/json":
                answer = json.loads(text)
            elif resp.status in (301, 302, 303):
                answer = {"Location": resp.headers.get("Location", "")}
        hop.answer = masked(answer) if isinstance(answer, dict) else answer
        return resp.status, answer

    async def jwks(self) -> jwt.PyJWKSet:
        async with self.http.get(f"{self.issuer}/jwks") as resp:
            return jwt.PyJWKSet.from_dict(await resp.json())

    async def decode(self, token: str, audience: str) -> Decoded:
        """The JWT's header and claims, its signature checked with the proxy's keys."""
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        try:
            keys = await self.jwks()
            key = next(k for k in keys.keys if k.key_id == header.get("kid"))
            jwt.decode(token, key.key, algorithms=[header["alg"]], audience=audience,
                       issuer=self.issuer, options={"verify_exp": False})
            check = (f"signature valid: key {header.get('kid')} of {self.issuer}/jwks; "
                     f"iss and aud ({audience}) as expected")
        except (StopIteration, jwt.PyJWTError, aiohttp.ClientError, KeyError) as exc:
            check = f"NOT valid: {type(exc).__name__}: {exc}"
        return Decoded(header, claims, check)
