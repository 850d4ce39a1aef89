"""Reads ``config.yaml`` (see DESIGN.md) into :class:`proxy.config.settings.Config`.

Every problem is reported at once, each with its key path, in a
:class:`ConfigError`.
"""

from proxy.config.errors import ConfigError
from proxy.config.load import load_config, load_or_report, parse_config

__all__ = ["ConfigError", "load_config", "load_or_report", "parse_config"]
