"""Everything about upstream banks. Never imports :mod:`proxy`."""
