"""Per-iteration Lloyd and EM beside faiss, oneDAL and scikit-learn, equal threads.

Each benchmark times (t(11 iterations) - t(1)) / 10 from one shared start on
the same number of threads for every library (the n_threads fixture: one, then
two), records it as extra_info['per_iteration_ms'], and checks the result of
the 11 iterations against a float64 numpy recomputation, so the work compared
is equal. faiss and oneDAL come with pip install '.[bench]'; without them their
benchmarks are skipped. ``python benchmarks/per_iteration.py`` prints the
README's table from the same runners.
"""
import numpy as np
import pytest
from _data import SIZES, image
from _peers import (em_emcore, em_onedal, em_sklearn, em_start, lloyd_emcore, lloyd_faiss,
                    lloyd_onedal, lloyd_sklearn, per_iteration, reference_em,
                    reference_lloyd)

K = 32
TOLERANCE = 0.5  # grey levels after 11 iterations; see per_iteration.py
LLOYD = {"emcore": (lloyd_emcore, None), "faiss": (lloyd_faiss, "faiss"),
         "oneDAL": (lloyd_onedal, "daal4py"), "scikit-learn": (lloyd_sklearn, "sklearn")}
EM = {"emcore": (em_emcore, None), "oneDAL": (em_onedal, "daal4py"),
      "scikit-learn": (em_sklearn, "sklearn")}
_cache = {}


def jittered(size):
    """float32 pixels plus fixed sub-unit noise (no exact ties), cached per size."""
    if size not in _cache:
        X = image(size).reshape(-1, 3).astype(np.float64)
        _cache[size] = (X + np.random.RandomState(7).uniform(-0.5, 0.5, X.shape)).astype(
            np.float32)
    return _cache[size]


def cached(key, compute):
    if key not in _cache:
        _cache[key] = compute()
    return _cache[key]


def record(benchmark, seconds, n_units, n_threads):
    benchmark.extra_info.update(
        per_iteration_ms=round(seconds * 1e3, 3), n_threads=n_threads,
        ns_per_pixel_component_per_core=round(seconds / n_units * 1e9 * n_threads, 3))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("library", list(LLOYD))
def test_lloyd_per_iteration(benchmark, size, library, n_threads):
    run, module = LLOYD[library]
    if module:
        pytest.importorskip(module, reason=f"{library} is a bench extra: pip install '.[bench]'")
    X = jittered(size)
    init = X[np.random.RandomState(0).choice(len(X), K, replace=False)]
    benchmark.group = f"lloyd per iteration {size} K={K} {n_threads} thread(s) each"
    seconds, centres = benchmark.pedantic(
        lambda: per_iteration(lambda n: run(X, init, n, n_threads), repeat=1), rounds=1)
    record(benchmark, seconds, len(X) * K, n_threads)
    reference = cached(("lloyd", size), lambda: reference_lloyd(X, init, 11))
    np.testing.assert_allclose(centres, reference, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("cov_type", ["diag", "full"])
@pytest.mark.parametrize("library", list(EM))
def test_em_per_iteration(benchmark, size, cov_type, library, n_threads):
    run, module = EM[library]
    if module:
        pytest.importorskip(module, reason=f"{library} is a bench extra: pip install '.[bench]'")
    X = jittered(size)
    start = em_start(X, K)
    benchmark.group = f"em {cov_type} per iteration {size} K={K} {n_threads} thread(s) each"
    seconds, means = benchmark.pedantic(
        lambda: per_iteration(lambda n: run(X, start, n, n_threads, cov_type), repeat=1),
        rounds=1)
    record(benchmark, seconds, len(X) * K, n_threads)
    reference = cached(("em", size, cov_type), lambda: reference_em(X, start, 11, cov_type))
    np.testing.assert_allclose(means, reference, rtol=0, atol=TOLERANCE)
