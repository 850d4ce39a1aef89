"""A session bank's settings for the sandbox broker, shared by the federation tests
(the adapter alone) and the flow tests (the proxy around it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from federation.sandbox import SandboxBroker, SandboxClient
from federation.settings import BankSettings, SessionApi

ACR_ITSME = "urn:merchant:acr:itsme"
BROKER_CLIENT = "merchant-backend"
BROKER_SECRET = "broker-secret-" + "b" * 20
ACCOUNT = "a-sdge-sandbox"
ATTRIBUTES = ("name", "firstName", "lastName", "dateOfBirth", "nin")
CLAIMS = {"name": "name", "given_name": "firstName", "family_name": "lastName",
          "birthdate": "dateOfBirth", "national_id": "nin.value"}


def new_broker(redirect_url: str, auth: str = "client_secret_basic") -> SandboxBroker:
    """A broker that knows our client and the proxy's callback as a redirect URL."""
    client = SandboxClient(BROKER_CLIENT, [], auth, secret=BROKER_SECRET)
    return SandboxBroker(clients=[client], redirect_urls=[redirect_url], account_id=ACCOUNT)


def session_settings(broker: SandboxBroker, bank_id: str = "itsme",
                     api: Mapping[str, Any] | None = None, **overrides: Any) -> BankSettings:
    """The DESIGN.md example, pointed at ``broker`` (which must be served already)."""
    session_api = SessionApi(
        api=broker.api, api_token_endpoint=broker.token_endpoint, provider="itsme",
        redirect_parameter="itsme_redirect_url", api_scopes=("signicat-api",),
        account_id=ACCOUNT, requested_attributes=ATTRIBUTES,
        loa={"high": "high", "substantial": "substantial"}, poll_interval=0.05,
    )  # fmt: skip
    settings = BankSettings(
        id=bank_id, kind="session", issuer="", client_id=BROKER_CLIENT,
        client_auth="client_secret_basic", client_secret=BROKER_SECRET,
        acr_values=(ACR_ITSME,), timeout=2.0, claims=dict(CLAIMS), name="itsme",
        session=dataclasses.replace(session_api, **dict(api or {})),
    )  # fmt: skip
    return dataclasses.replace(settings, **overrides)
