"""HTTP handlers: parse once, call the rules and the login flow, render. No protocol logic
of their own.

May import every room but :mod:`proxy.app` and :mod:`proxy.ops`.
"""
