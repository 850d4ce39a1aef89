"""Running the proxy: the ``app2app-proxy`` commands (serve, workers, reload on SIGHUP,
keys, operator revocation, the demo).

The top of the house: may import every room, and :mod:`proxy.app`.
"""
