"""The database layer: async engines, per-service migrations, compare-and-swap."""

from stratus.db.cas import compare_and_swap
from stratus.db.engine import Database, normalize_url

__all__ = ["Database", "compare_and_swap", "normalize_url"]
