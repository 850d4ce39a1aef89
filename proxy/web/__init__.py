"""The HTTP toolkit every handler uses: the one error path (how an OAuthError reaches the
user), reading forms, JSON answers, the HTML pages, rate limits.

May import the rules (:mod:`proxy.oauth`) and what they stand on; never the login flow or
the handlers.
"""
