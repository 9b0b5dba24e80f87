"""Text helpers used by the report generator."""

import re


def word_count(text: str) -> int:
    """Number of words in `text`, separated by any whitespace."""
    return len([word for word in text.split(" ") if word])


def slugify(text: str) -> str:
    """A URL slug: lowercase words of letters and digits joined by single hyphens."""
    words = re.findall(r"[A-Za-z0-9]+", text)
    return "-".join(words)


def title_case(text: str) -> str:
    """Every word capitalised, the rest of each word lowercased."""
    return " ".join(word[:1].upper() + word[1:].lower() for word in text.split())
