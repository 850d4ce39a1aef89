"""The sandbox bank: a fake upstream OpenID Provider for tests and the demo.

It serves discovery, JWKS, authorize (auto-approve or a one-tap page), token,
userinfo and introspection, CIBA poll mode with a bank app page (BankID App2App
style), a browser-less App2App native authorization endpoint, records every
request it gets, and has knobs to inject each failure a real bank can produce.
:class:`SandboxBroker` is a session broker beside it (a REST session API with an
"itsme app", Signicat's headless flow), with knobs of its own.
"""

from federation.sandbox.app import create_app
from federation.sandbox.bank import ACR_VALUES, DEFAULT_ACR, ID_TOKEN_FAULTS, SandboxBank
from federation.sandbox.broker import BrokerRequest, BrokerSession, SandboxBroker
from federation.sandbox.broker_app import serve_broker
from federation.sandbox.ciba import CIBA_GRANT_TYPE
from federation.sandbox.models import (
    CibaRequest,
    CibaRequestClosed,
    NativeRequest,
    NoRecordedRequest,
    RecordedRequest,
    SandboxClient,
    SandboxUser,
    UnknownCibaRequest,
)
from federation.sandbox.serve import serve_sandbox

__all__ = [
    "ACR_VALUES",
    "CIBA_GRANT_TYPE",
    "DEFAULT_ACR",
    "ID_TOKEN_FAULTS",
    "BrokerRequest",
    "BrokerSession",
    "CibaRequest",
    "CibaRequestClosed",
    "NativeRequest",
    "NoRecordedRequest",
    "RecordedRequest",
    "SandboxBank",
    "SandboxBroker",
    "SandboxClient",
    "SandboxUser",
    "UnknownCibaRequest",
    "create_app",
    "serve_broker",
    "serve_sandbox",
]
