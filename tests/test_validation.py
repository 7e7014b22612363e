"""The input checks' helpers (emcore/_validation.py) against plain numpy."""
import numpy as np
import pytest

from emcore._kernels import RANGE_SPANS
from emcore._validation import KERNEL_CHECK_VALUES, as_pixel_depth, check_finite, value_range

LANE_ROWS = 32  # rows the range kernel reads as one flat run (emcore/_kmeans.pyx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("d", [1, 3, 7, 2000])
def test_value_range_is_each_features_min_and_max(dtype, d):
    """Per feature, the minimum and maximum as float64, for row counts below, at and
    past a run of the kernel and its spans (rows left after the last run), on 1 to 3
    threads, C-contiguous or not."""
    rng = np.random.RandomState(d)
    for n in (1, LANE_ROWS - 1, LANE_ROWS, LANE_ROWS + 1, RANGE_SPANS * LANE_ROWS * 2 + 7):
        X = (rng.normal(0, 50, (n, d)) + 100).astype(dtype)
        for arr in (X, np.asfortranarray(X)):
            for n_threads in (1, 2, 3):
                low, high = value_range(arr, n_threads)
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
    for row in (0, 4_321, 9_999):  # the first run, within a span, the rows after a run
        for n_threads in (1, 2):
            bad = X.copy()
            bad[row, 1] = np.nan
            low, high = value_range(bad, n_threads)
            assert np.isnan(low[1]) and np.isnan(high[1]) and np.isfinite(low[[0, 2]]).all()
            bad[row, 1] = -np.inf
            bad[row, 2] = np.inf
            low, high = value_range(bad, n_threads)
            assert low[1] == -np.inf and high[2] == np.inf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [100, KERNEL_CHECK_VALUES])  # numpy's isfinite, the kernel
def test_check_finite_finds_any_nan_or_infinity(dtype, n):
    """Every NaN or infinity is found, wherever it is and whichever way the array is
    read, and named; a finite array is returned as it is."""
    X = np.random.RandomState(1).rand(n, 2).astype(dtype)
    assert check_finite(X, "X", 2) is X
    for index in (0, n // 2, n - 1):
        for value, word in ((np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")):
            bad = X.copy()
            bad[index, index % 2] = value
            with pytest.raises(ValueError, match=f"X contains {word} values"):
                check_finite(bad, "X", 2)


@pytest.mark.parametrize("values,dtype,types", [
    ([0, 7, 255], np.uint8, [np.int64, np.int32, np.int16, np.uint32, np.uint64]),
    ([0, 256, 65535], np.uint16, [np.int64, np.int32, np.uint32, np.uint64]),
    ([-1, 3], np.float64, [np.int64, np.int32, np.int16, np.int8]),
    ([0, 65536], np.float64, [np.int64, np.int32, np.uint32, np.uint64])])
def test_integers_come_at_the_depth_their_values_fit(values, dtype, types):
    for given in types:  # every type that holds these values
        got = as_pixel_depth(np.array(values, dtype=given))
        assert got.dtype == dtype, given
        np.testing.assert_array_equal(got, values)  # the same values


def test_other_pixels_are_left_as_they_are():
    for arr in (np.zeros(3, np.uint8), np.zeros(3, np.uint16), np.array([-2.5, 1e9]),
                np.zeros((0, 3), np.int64)):
        assert as_pixel_depth(arr) is arr
