"""Hidden tests of statskit: the reward is 1 when all of them pass."""

import math

import pytest

from statskit import mean, median, spread, summarize


@pytest.mark.parametrize(
    "values, expected",
    [
        ([7], 7),
        ([3, 1, 2], 2),
        ([1, 2, 3, 4], 2.5),
        ([10, -10], 0),
        ([9, 2, 7, 4, 5, 1], 4.5),
        ([0.5, 0.25, 1.0, 0.75], 0.625),
        ([-3, -1, -2, -4], -2.5),
        ([2, 2, 2, 2], 2),
    ],
)
def test_median(values, expected):
    assert math.isclose(median(values), expected)


def test_median_does_not_reorder_its_input():
    values = [3, 1, 2, 4]
    median(values)
    assert values == [3, 1, 2, 4]


def test_median_of_empty_data_is_an_error():
    with pytest.raises(ValueError):
        median([])


def test_mean_and_spread_still_work():
    assert mean([2, 4, 9]) == 5
    assert spread([5, 1, 8]) == 7


def test_summary_uses_the_fixed_median():
    assert summarize([4, 1, 3, 2]) == {"count": 4, "mean": 2.5, "median": 2.5, "min": 1, "max": 4, "spread": 3}
