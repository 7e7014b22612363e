"""A diagonal EM iteration on a chunked Dask array beside the same in memory.

Per iteration ((t(11) - t(1)) / 10, from one start) on a dask.distributed
LocalCluster of 2 single-thread worker processes, against the in-memory fit on
2 threads; the samples are a tiled copy of the coffee photo (24 MP with
EMCORE_BENCH_FULL=1, 1 MP otherwise), in 2 MP chunks. The difference is the
scheduler's overhead per iteration (both do the same arithmetic; the results
are checked equal).
"""
import warnings

import numpy as np
import pytest
from _data import FULL, synthetic
from _peers import per_iteration

from emcore import GaussianMixture

N_PIXELS = 24_000_000 if FULL else 1_000_000
K = 32


@pytest.fixture(scope="module")
def data():
    X = synthetic(N_PIXELS).reshape(-1, 3).astype(np.float32)[:N_PIXELS]
    means = X[np.random.RandomState(0).choice(len(X), K, replace=False)].astype(np.float64)
    return X, dict(means_init=means, weights_init=np.full(K, 1 / K),
                   precisions_init=np.full((K, 3), 1 / 400.0))


def _fit(X, start, n_iter, n_threads=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(K, covariance_type="diag", max_iter=n_iter, tol=0,
                               n_threads=n_threads, **start).fit(X).means_


@pytest.mark.parametrize("where", ["in-memory", "dask-localcluster"])
def test_em_iteration_on_dask(benchmark, data, where):
    X, start = data
    benchmark.group = f"dask diag EM per iteration {len(X) / 1e6:.0f} MP K={K}"
    if where == "in-memory":
        seconds, means = benchmark.pedantic(
            lambda: per_iteration(lambda n: _fit(X, start, n, 2), repeat=1), rounds=1)
    else:
        da = pytest.importorskip("dask.array")
        distributed = pytest.importorskip("distributed")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster):
            lazy = da.from_array(X, chunks=(2_000_000, 3)).persist()
            seconds, means = benchmark.pedantic(
                lambda: per_iteration(lambda n: _fit(lazy, start, n), repeat=1), rounds=1)
    benchmark.extra_info.update(per_iteration_ms=round(seconds * 1e3, 2), pixels=len(X))
    np.testing.assert_allclose(means, _fit(X, start, 11, 2), rtol=1e-9)
