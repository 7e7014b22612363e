"""The input checks' helpers (emcore/_validation.py) against plain numpy."""
import numpy as np
import pytest

from emcore._validation import RANGE_ROW_VALUES, value_range


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("d", [1, 3, 7, 2000])
def test_value_range_is_each_features_min_and_max(dtype, d):
    """Per feature, the minimum and maximum as float64, for row counts below, at and
    past the wide-row layout's sizes (a tail of rows apart), C-contiguous or not."""
    rng = np.random.RandomState(d)
    per_row = max(1, RANGE_ROW_VALUES // d)
    for n in (1, 2 * per_row - 1, 2 * per_row, 5 * per_row + 3):
        X = (rng.normal(0, 50, (n, d)) + 100).astype(dtype)
        for arr in (X, np.asfortranarray(X)):
            low, high = value_range(arr)
            assert low.dtype == high.dtype == np.float64
            np.testing.assert_array_equal(low, X.min(axis=0).astype(np.float64))
            np.testing.assert_array_equal(high, X.max(axis=0).astype(np.float64))


def test_value_range_of_no_features_is_empty():
    low, high = value_range(np.empty((5000, 0), dtype=np.float32))
    assert low.shape == high.shape == (0,)


def test_value_range_passes_nan_and_infinity_on():
    """A NaN anywhere makes its feature's low and high NaN, as numpy's min and max do;
    an infinity is its own bound."""
    X = np.random.RandomState(0).rand(10_000, 3)
    for row in (0, 4_321, 9_999):  # in the wide rows and in the tail
        bad = X.copy()
        bad[row, 1] = np.nan
        low, high = value_range(bad)
        assert np.isnan(low[1]) and np.isnan(high[1]) and np.isfinite(low[[0, 2]]).all()
        bad[row, 1] = -np.inf
        bad[row, 2] = np.inf
        low, high = value_range(bad)
        assert low[1] == -np.inf and high[2] == np.inf
