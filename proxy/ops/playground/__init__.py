"""The demo's merchant app, a playground for a merchant developer: it plays the merchant's
mobile app and its backend against the proxy and the sandbox bank, and shows what
happened at each hop (parameters, the ID token, the token response, what each demo API
sees on introspection), with buttons that refresh, revoke and introspect again, and
the browser-less flow step by step. Part of ``app2app-proxy demo`` only."""

from proxy.ops.playground.app import Playground, merchant_app

__all__ = ["Playground", "merchant_app"]
