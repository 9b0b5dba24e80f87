"""Summary statistics for lists of numbers."""

from .summary import mean, median, spread, summarize

__all__ = ["mean", "median", "spread", "summarize"]
