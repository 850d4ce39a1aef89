"""The merchant-facing authorization server, in rooms (README.md, "Layout", draws them):

- :mod:`proxy.model`: token forms and stored records, plain data
- :mod:`proxy.config`: ``config.yaml`` into frozen settings, and the key schedule
- :mod:`proxy.observability`: logs, metrics, audit events
- :mod:`proxy.store`: the one store interface; Redis and the embedded store
- :mod:`proxy.oauth`: the OAuth/OIDC rules and what they mint
- :mod:`proxy.web`: the error path, forms, responses, pages, rate limits
- :mod:`proxy.login`: a merchant login through a bank
- :mod:`proxy.endpoints`: the HTTP handlers
- :mod:`proxy.app`: ``create_app`` wires the rooms together
- :mod:`proxy.ops`: the commands that run it

A room imports only the rooms listed above it (tests/proxy/test_layout.py checks it);
``federation`` never imports ``proxy``.
"""
