"""Summary statistics of a list of numbers."""


def _require_values(values, what):
    if len(values) == 0:
        raise ValueError(f"{what} of empty data")


def mean(values):
    """The arithmetic mean of `values`."""
    _require_values(values, "mean")
    return sum(values) / len(values)


def median(values):
    """The middle value of `values`; the mean of the two middle values when their count is even."""
    _require_values(values, "median")
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle]


def spread(values):
    """The difference between the largest and the smallest value."""
    _require_values(values, "spread")
    return max(values) - min(values)


def summarize(values):
    """Count, mean, median, min, max and spread of `values`, as a dict."""
    _require_values(values, "summary")
    return {
        "count": len(values),
        "mean": mean(values),
        "median": median(values),
        "min": min(values),
        "max": max(values),
        "spread": spread(values),
    }
