"""Argument checks shared by the public API. Every failure is a ValueError or
TypeError whose message names the argument and what is wrong with it."""
import numbers

import numpy as np

from emcore import _kernels

#: Samples per block in the reducing kernels grows with N so that there are at most
#: MAX_BLOCKS blocks; it depends on N alone, which makes results thread-independent.
MIN_BLOCK = 2048
MAX_BLOCKS = 256
#: Block sizes are whole tiles (TILE in emcore/_tile.pxd): no part-filled tile
#: inside a block.
BLOCK_ALIGN = 128


def block_layout(n_samples):
    """(block_size, n_blocks) for the reducing kernels, a function of N only."""
    n_samples = int(n_samples)
    per_block = -(-n_samples // MAX_BLOCKS)
    block_size = max(MIN_BLOCK, -(-per_block // BLOCK_ALIGN) * BLOCK_ALIGN)
    n_blocks = max(1, -(-n_samples // block_size))
    return block_size, n_blocks


def check_int(value, name, minimum=None, maximum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(value, name, minimum=None, strict=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    return value


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_optional_callable(value, name):
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, got {value!r}")
    return value


def check_declared_params(estimator, checks):
    """Check an estimator's parameters against its declared table {name: check}, where
    check(value, name) raises TypeError or ValueError naming the parameter."""
    for name, check in checks.items():
        check(getattr(estimator, name), name)


def check_random_state(seed):
    """A RandomState from None, an int or a RandomState (scikit-learn's convention)."""
    if seed is None or (isinstance(seed, (numbers.Integral, np.integer))
                        and not isinstance(seed, bool)):
        try:
            return np.random.RandomState(seed)
        except ValueError as err:
            raise ValueError(f"random_state must be a non-negative 32-bit integer: {err}") from None
    if isinstance(seed, np.random.RandomState):
        return seed
    raise TypeError(f"random_state must be None, an integer or a numpy RandomState, got {seed!r}")


def _is_sparse(values):
    return type(values).__module__.startswith("scipy.sparse")


def as_real_array(values, name):
    """An ndarray of real numbers (integer, unsigned or float).

    Objects that convert to float (numbers held in an object array) are converted;
    sparse, complex, boolean and string input is refused.
    """
    if _is_sparse(values):
        raise TypeError(f"{name} is a sparse matrix; emcore needs dense data: pass "
                        f"{name}.toarray()")
    try:
        arr = np.asarray(values)
    except Exception as err:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array: {err}") from None
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must hold real numbers: {err}") from None
    if arr.dtype.kind not in "uif":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def as_pixel_depth(arr):
    """Integer pixels of a type other than uint8 and uint16 (numpy's default int64, a
    list of ints) as the 8 or 16-bit image their values fit (the same values), so that
    full intensity (255 or 65535) and alpha mean what they mean in an image; as
    float64 when they fit neither (negative, or above 65535: a scale of their own,
    as a float image's). Other arrays are returned as they are."""
    if arr.dtype.kind not in "iu" or arr.dtype in (np.uint8, np.uint16) or arr.size == 0:
        return arr
    low, high = arr.min(), arr.max()
    if low >= 0 and high <= 255:
        return arr.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return arr.astype(np.uint16)
    return arr.astype(np.float64)


def check_labels(labels, shape, n_entries, name="labels", dtype=np.int32):
    """Integer labels of ``shape``, each an index into ``n_entries`` palette entries or
    segments; returns them as an int32 array, or of ``dtype`` (None: their own integer
    type; TypeError / ValueError otherwise)."""
    arr = np.asarray(labels)
    if arr.dtype.kind not in "ui":
        raise TypeError(f"{name} must be integers, got {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_entries):
        raise ValueError(f"{name} must lie in 0..{n_entries - 1} (one per entry), got "
                         f"{arr.min()}..{arr.max()}")
    return arr if dtype is None else arr.astype(dtype, copy=False)


#: from this many values on, check_finite reads an array once in the kernels (a
#: range) rather than through numpy's isfinite (a bool array, then its all())
KERNEL_CHECK_VALUES = 1 << 16


def check_finite(arr, name, n_threads=1):
    """``arr``; ValueError naming ``name`` when it holds NaN or infinite values."""
    if arr.dtype.kind != "f":
        return arr
    if (arr.dtype in (np.float32, np.float64) and arr.ndim == 2
            and arr.size >= KERNEL_CHECK_VALUES and arr.flags.c_contiguous):
        finite = all(np.isfinite(bound).all() for bound in value_range(arr, n_threads))
    else:
        finite = bool(np.isfinite(arr).all())
    if not finite:
        bad = "NaN" if np.isnan(arr).any() else "infinite"
        raise ValueError(f"{name} contains {bad} values")
    return arr


def compute_dtype(arr):
    """float32 for float32 input, float64 for everything else (as scikit-learn).

    Image code that wants float32 for 8-bit pixels converts before calling.
    """
    return np.float32 if arr.dtype == np.float32 else np.float64


def feature_names(X):
    """The column names of a dataframe whose columns are all strings, else None."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "__array__"):
        return None
    names = np.asarray(list(columns), dtype=object)
    is_str = np.array([isinstance(n, str) for n in names], dtype=bool)
    if is_str.all() and len(names):
        return names
    if is_str.any():
        raise TypeError("Feature names are only supported if all input features have "
                        "string names; convert the column names to str")
    return None


def check_samples(X, name="X", dtype=None, min_samples=1, n_threads=1):
    """A finite (N, D) C-contiguous float array for the kernels.

    dtype None keeps float32 as float32 and computes everything else in float64;
    ``n_threads`` read a large array for its finiteness.
    """
    arr = as_real_array(X, name)
    if arr.ndim != 2:
        hint = (" Reshape your data: array.reshape(-1, 1) for a single feature, "
                "array.reshape(1, -1) for a single sample." if arr.ndim == 1 else "")
        raise ValueError(f"Expected 2D array, got {arr.ndim}D array instead: {name} must be "
                         f"(n_samples, n_features), got shape {arr.shape}.{hint}")
    if arr.shape[0] < min_samples:
        raise ValueError(f"Found array with {arr.shape[0]} sample(s) (shape={arr.shape}) "
                         f"while a minimum of {min_samples} is required: {name} is empty")
    if arr.shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum "
                         f"of 1 is required: {name} has no features")
    check_finite(arr, name, n_threads)
    dtype = compute_dtype(arr) if dtype is None else dtype
    out = np.ascontiguousarray(arr, dtype=dtype)
    if (dtype == np.float32 and arr.dtype.kind == "f" and arr.dtype.itemsize > 4
            and not np.isfinite(out).all()):  # float64 beyond the float32 range
        raise ValueError(f"{name} has values too large for float32")
    return out


def value_range(X, n_threads=1):
    """(low, high): X's per-feature minimum and maximum as float64 arrays (NaN where a
    feature holds one, as numpy's min and max): C-contiguous float32 and float64 read
    once by the kernels, anything else (integers, strided views) a column at a time
    in place, never copied (a float64 copy of an 8-bit Dask chunk is 8 times its size)."""
    X = np.asarray(X)
    if X.dtype in (np.float32, np.float64) and X.flags.c_contiguous and X.shape[1] > 0:
        return _kernels.feature_range(X, n_threads)
    columns = range(X.shape[1])
    return (np.array([X[:, j].min() for j in columns], dtype=np.float64),
            np.array([X[:, j].max() for j in columns], dtype=np.float64))


def overflow_error(low, high, dtype, what, name="X"):
    """The ValueError for ``what`` (squared distances, covariances) overflowing ``dtype``,
    for data (called ``name`` in the message) whose per-feature range is [low, high]."""
    largest = float(np.maximum(np.abs(low), np.abs(high)).max())
    return ValueError(f"{what} overflow {np.dtype(dtype)}: {name}'s values (up to "
                      f"{largest:.3g}) are too large; rescale {name}")


def check_spread(low, high, dtype, name="X"):
    """ValueError when squared distances between samples could overflow ``dtype``, for
    data whose per-feature range is [low, high] (float64 arrays).

    The kernels square differences in the compute dtype (float32 for float32 X):
    data spread beyond about 1e19 (float32) or 1e154 (float64) is refused with a
    message that says so, rather than fitted into infinities.
    """
    with np.errstate(over="ignore"):  # an infinite square is the answer, not a problem
        spread = float(((high - low) ** 2).sum())
    if spread > np.finfo(dtype).max / 16:
        raise overflow_error(low, high, dtype, "squared distances", name)


def check_sample_weight(sample_weight, n_samples, positive_sum=True):
    """Non-negative finite float64 weights of length n_samples with a positive sum
    (``positive_sum=False`` for a piece of a data set, which may weigh nothing).

    No weights give a read-only view of one 1.0 (no N-long array: 400 MB at 50 MP).
    """
    if sample_weight is None:
        return np.broadcast_to(np.float64(1.0), (n_samples,))
    w = as_real_array(sample_weight, "sample_weight")
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), got {w.shape}")
    w = np.ascontiguousarray(w, dtype=np.float64)
    check_finite(w, "sample_weight")
    if (w < 0).any():
        raise ValueError("sample_weight must be non-negative")
    with np.errstate(over="ignore"):
        total = w.sum()
    if not np.isfinite(total):
        raise ValueError(f"sample_weight sums past float64's range (weights up to "
                         f"{w.max():.3g}); rescale them")
    if positive_sum and not total > 0:
        raise ValueError("sample_weight must have a positive sum: every weight is zero")
    return w


def _shared(w):
    return w.strides[0] == 0 and w.shape[0] > 0


def n_weighted(w):
    """How many samples have a positive weight (O(1) for shared weights)."""
    return (w.shape[0] if w[0] > 0 else 0) if _shared(w) else int(np.count_nonzero(w))


def weight_total(w):
    """The sum of the weights (O(1) for shared weights)."""
    return float(w[0]) * w.shape[0] if _shared(w) else float(w.sum())


def kernel_weights(w):
    """Weights as the kernels take them: (N,), or (1,) when every sample shares one."""
    if _shared(w):
        return np.ascontiguousarray(w[:1])
    return w
