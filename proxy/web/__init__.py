"""The HTTP toolkit every handler uses: the one error path (how an OAuthError reaches the
user), reading forms, JSON answers, the HTML pages, rate limits; and the HTTP server the
app runs in (connection timeouts, the answer to what aiohttp's parser refuses).

May import the rules (:mod:`proxy.oauth`) and what they stand on; never the login flow or
the handlers.
"""
