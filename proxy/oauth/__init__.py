"""The OAuth and OpenID Connect rules and what they mint: client authentication, the
authorization request's checks, PAR, DPoP, codes, grants, refresh rotation, the ID token,
the merchant ``sub``, the one JWT signer and bank-token cipher, and :class:`Services`,
what every rule is handed.

May import the store, config, model, observability and ``federation``; never the web
layer, the login flow or the handlers. A rule raises :class:`~proxy.oauth.errors.OAuthError`
and knows no aiohttp request where it can avoid one.
"""
