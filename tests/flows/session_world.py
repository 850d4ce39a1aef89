"""Whole logins at a session bank (``kind: session``): the proxy on a real port, the
sandbox broker (and the sandbox bank A beside it) over HTTP, real Redis.

``session_world()`` builds it; ``SessionWorld.login()`` plays the merchant app and the
user's itsme app up to the code on the merchant redirect URI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest

from federation.sandbox import (
    SandboxBank,
    SandboxBroker,
    SandboxClient,
    serve_broker,
    serve_sandbox,
)
from proxy.config.settings import Lifetimes, StoreSettings
from tests.flows.harness import (
    ACR_A,
    Login,
    Proxy,
    app_redirect_params,
    bank_settings,
    make_config,
    run_proxy,
)
from tests.ports import free_port
from tests.session_broker import ACR_ITSME, new_broker, session_settings


@dataclass
class SessionWorld:
    broker: SandboxBroker
    bank_a: SandboxBank
    proxy: Proxy
    stack: AsyncExitStack

    async def another_proxy(self) -> Proxy:
        """A second instance with the same config (same Redis, keys and issuer)."""
        port = free_port()
        await self.stack.enter_async_context(run_proxy(self.proxy.config, port))
        return Proxy(f"http://127.0.0.1:{port}", self.proxy.config, self.proxy.http)

    async def start(self, **overrides: str | None) -> tuple[str, Login]:
        """A browser login at the itsme bank: the itsme URL the proxy sent it to."""
        resp, login = await self.proxy.authorize(**{"acr_values": ACR_ITSME, **overrides})
        assert resp.status == 302, await resp.text()
        return resp.headers["Location"], login

    async def itsme(self, url: str) -> str:
        """The itsme app at ``url`` answers (per the broker's ``decision``): where it
        sends the user next, the proxy's callback."""
        resp = await self.proxy.http.get(url, allow_redirects=False)
        assert resp.status == 302, await resp.text()
        location: str = resp.headers["Location"]
        assert location.startswith(f"{self.proxy.issuer}/callback/itsme?"), location
        return location

    async def login(self, **overrides: str | None) -> Login:
        """Start, the itsme app, the callback: the merchant app's redirect parameters."""
        url, login = await self.start(**overrides)
        callback = await self.itsme(url)
        final = await self.proxy.http.get(callback, allow_redirects=False)
        assert final.status == 302, await final.text()
        login.params = app_redirect_params(final)
        return login


SessionWorldFactory = Callable[..., Any]
NATIONAL_ID = "national_id"


@pytest.fixture
async def session_world(redis_url: str, store_prefix: str
                        ) -> AsyncIterator[SessionWorldFactory]:  # fmt: skip
    """``await session_world(**itsme_overrides, api=..., lifetimes=..., store=...)``."""
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())

        async def build(api: Mapping[str, Any] | None = None, lifetimes: Lifetimes | None = None,
                        store: StoreSettings | None = None, **itsme: Any) -> SessionWorld:
            port = free_port()
            issuer = f"http://127.0.0.1:{port}"
            broker = new_broker(f"{issuer}/callback/itsme")
            await stack.enter_async_context(serve_broker(broker))
            bank_a = SandboxBank(clients=[SandboxClient(
                "merchant-at-a", [f"{issuer}/callback/bank-a"], "client_secret_basic",
                secret="bank-a-secret-" + "s" * 20,
            )])  # fmt: skip
            await stack.enter_async_context(serve_sandbox(bank_a))
            banks = [bank_settings(bank_a, "bank-a", ACR_A),
                     session_settings(broker, api=api, **itsme)]
            config = make_config(issuer, store or StoreSettings(url=redis_url,
                                                                prefix=store_prefix),
                                 banks, lifetimes)
            # the itsme route's custom claim is released under the scope of its name
            # (docs/security.md, "Claims and scopes"): the test clients may ask for it
            config = replace(config, clients=tuple(
                replace(c, scopes=(*c.scopes, NATIONAL_ID)) for c in config.clients))
            await stack.enter_async_context(run_proxy(config, port))
            return SessionWorld(broker, bank_a, Proxy(issuer, config, http), stack)

        yield build

