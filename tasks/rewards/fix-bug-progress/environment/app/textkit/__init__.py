"""Small text utilities."""

from .core import slugify, title_case, word_count

__all__ = ["slugify", "title_case", "word_count"]
