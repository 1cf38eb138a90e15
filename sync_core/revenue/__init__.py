"""Revenue recognition engine (pure: no Dagster)."""

from sync_core.revenue.schedule import expand_lines

__all__ = ["expand_lines"]
