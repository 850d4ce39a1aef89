"""What operators watch: structured log lines (one per request), Prometheus metrics and
the audit events with stable names they alert on.

May import :mod:`proxy.model` only (an audit line names a token by its fingerprint).
"""
