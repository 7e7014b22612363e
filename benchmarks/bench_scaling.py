"""Cost against pixels N and components K (linear in N * K), and against threads."""
import numpy as np
import pytest
from _data import FULL, synthetic

from emcore import GaussianMixture

N_VALUES = [100_000, 1_000_000, 8_000_000] if FULL else [100_000]
K_VALUES = [2, 8, 32, 128, 256] if FULL else [8]


@pytest.mark.parametrize("n", N_VALUES)
@pytest.mark.parametrize("k", K_VALUES)
def test_diag_iteration_scaling(benchmark, n, k, n_threads):
    X = synthetic(n).reshape(-1, 3).astype(np.float32)[:n]
    means = X[np.random.RandomState(0).choice(len(X), k, replace=False)].astype(np.float64)
    gm = GaussianMixture(k, covariance_type="diag", max_iter=1, tol=0, n_threads=n_threads,
                         means_init=means, weights_init=np.full(k, 1.0 / k),
                         precisions_init=np.full((k, 3), 1 / 400.0))
    benchmark.group = "scaling diag EM iteration"
    benchmark.extra_info.update(n=len(X), k=k, n_threads=n_threads, dtype="float32")
    benchmark.pedantic(gm.fit, (X,), rounds=3, warmup_rounds=1)  # min of 3: a noisy VM
    if benchmark.stats is not None:  # timed runs: record the cost per pixel-component
        seconds = benchmark.stats.stats.min
        benchmark.extra_info["ns_per_pixel_component_per_core"] = round(
            seconds * n_threads / (len(X) * k) * 1e9, 3)
