"""The sandbox bank: a fake upstream OpenID Provider for tests and the demo.

It serves discovery, JWKS, authorize (auto-approve or a one-tap page), token,
userinfo and introspection, records every request it gets, and has knobs to
inject each failure a real bank can produce.
"""

from federation.sandbox.app import create_app
from federation.sandbox.bank import ACR_VALUES, DEFAULT_ACR, ID_TOKEN_FAULTS, SandboxBank
from federation.sandbox.models import (
    NoRecordedRequest,
    RecordedRequest,
    SandboxClient,
    SandboxUser,
)
from federation.sandbox.serve import serve_sandbox

__all__ = [
    "ACR_VALUES",
    "DEFAULT_ACR",
    "ID_TOKEN_FAULTS",
    "NoRecordedRequest",
    "RecordedRequest",
    "SandboxBank",
    "SandboxClient",
    "SandboxUser",
    "create_app",
    "serve_sandbox",
]
