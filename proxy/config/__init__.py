"""Reads ``config.yaml`` (see DESIGN.md) into :class:`proxy.config.settings.Config`, the
frozen settings every other room reads, and the signing-key schedule it implies
(:mod:`proxy.config.rotation`).

Every problem is reported at once, each with its key path, in a :class:`ConfigError`.
May import ``federation`` (a bank's settings are its own) and nothing else of the proxy.
"""

from proxy.config.errors import ConfigError
from proxy.config.load import load_config, load_or_report, parse_config

__all__ = ["ConfigError", "load_config", "load_or_report", "parse_config"]
