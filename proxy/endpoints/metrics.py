"""GET /metrics: every metric of this process, or of every worker (proxy.observability.metrics)."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from proxy.oauth.errors import OAuthError
from proxy.oauth.services import SERVICES
from proxy.observability.metrics import registry


async def metrics_endpoint(request: web.Request) -> web.StreamResponse:
    """GET /metrics: the Prometheus text format (OpenMetrics when the scraper asks).
    With ``metrics.enabled: false`` it does not exist (404); with
    ``metrics.bearer_token`` the scraper must send ``Authorization: Bearer <token>``."""
    settings = request.app[SERVICES].config.metrics
    if not settings.enabled:
        raise web.HTTPNotFound()
    if settings.bearer_token is not None:
        sent = request.headers.get("Authorization", "")
        expected = f"Bearer {settings.bearer_token}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise OAuthError(
                "invalid_token", "send the metrics bearer token", status=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )  # fmt: skip
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encoder(registry()), headers={"Content-Type": content_type})
