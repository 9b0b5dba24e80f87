import pytest

from statskit import mean, median, spread, summarize


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


def test_median_of_odd_count():
    assert median([5, 1, 3]) == 3


def test_median_of_even_count():
    assert median([4, 1, 3, 2]) == 2.5


def test_spread():
    assert spread([3, -2, 7]) == 9


def test_summary_keys():
    assert set(summarize([1, 2])) == {"count", "mean", "median", "min", "max", "spread"}


def test_empty_data_is_an_error():
    with pytest.raises(ValueError):
        median([])
