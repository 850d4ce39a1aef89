"""OAuth errors as the sandbox bank answers them on its back-channel endpoints."""

from __future__ import annotations

from aiohttp import web


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: JSON ``{error, error_description}`` with ``status``."""

    def __init__(
        self,
        error: str,
        description: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> web.Response:
        headers = {"Cache-Control": "no-store", **self.headers}
        return web.json_response(
            {"error": self.error, "error_description": self.description},
            status=self.status,
            headers=headers,
        )


def invalid_client(description: str, *, basic: bool = False) -> OAuthError:
    # RFC 6749 §5.2: "If the client attempted to authenticate via the "Authorization"
    # request header field, the authorization server MUST respond with an HTTP 401
    # ... and include the "WWW-Authenticate" response header field".
    headers = {"WWW-Authenticate": 'Basic realm="sandbox"'} if basic else {}
    return OAuthError("invalid_client", description, status=401, headers=headers)
