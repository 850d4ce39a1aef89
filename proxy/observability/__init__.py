"""What operators watch: structured log lines (one per request), Prometheus metrics,
the audit events with stable names they alert on, and OpenTelemetry traces when asked
(:mod:`proxy.observability.tracing`, imported by the rooms above; the store and the
banks' code get their hooks handed in, never import it).

May import :mod:`proxy.model` only (an audit line names a token by its fingerprint).
"""
