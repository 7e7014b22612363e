"""Fitting a zarr image on a dask.distributed LocalCluster beside the same in memory.

The image is the coffee photo tiled (with +-3 levels of noise) to 64 MP (600 wide) with
EMCORE_BENCH_FULL=1 (1 MP otherwise), written to a zarr store in 2048-row chunks (1.2 MP)
and read back lazily with ``dask.array.from_zarr``. On a LocalCluster of 2
single-thread worker processes against the in-memory fit on 2 threads:

* a diagonal EM iteration, K = 32, on every pixel (float32), per iteration
  ((t(11) - t(1)) / 10, one start); the difference is the scheduler's overhead;
* the unique-colour path: ``quantize(image, 32)`` of the zarr image (colours
  merged from every chunk, fitted in memory, labels and image lazy and written
  back to zarr) against ``quantize`` of the in-memory array.

Each result is checked equal to the in-memory one. The client's and the largest
worker's peak memory (VmHWM, ru_maxrss) are recorded in extra_info; the client
also holds the in-memory copy used for the comparison.
"""
import time
import warnings

import numpy as np
import pytest
from _data import FULL, synthetic
from _peers import per_iteration

from emcore import GaussianMixture, quantize

N_PIXELS = 64_000_000 if FULL else 1_000_000
K = 32


def _peak_rss_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_peak_mib(client):
    """The largest peak RSS of any worker process so far."""
    return round(max(client.run(_peak_rss_mib).values()))


def client_peak_mib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


@pytest.fixture(scope="module")
def zarr_image(tmp_path_factory):
    zarr = pytest.importorskip("zarr", reason="zarr is a bench extra: pip install '.[bench]'")
    da = pytest.importorskip("dask.array")
    image = synthetic(N_PIXELS)  # (N / 600, 600, 3)
    path = str(tmp_path_factory.mktemp("zarr") / "image.zarr")
    store = zarr.open_array(path, mode="w", shape=image.shape,
                            chunks=(2048, image.shape[1], 3), dtype=np.uint8)
    store[:] = image
    return image, da.from_zarr(path)


def _fit(X, start, n_iter, n_threads=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(K, covariance_type="diag", max_iter=n_iter, tol=0,
                               n_threads=n_threads, **start).fit(X).means_


@pytest.fixture(scope="module")
def cluster():  # asked for before the image: the workers start without a copy of it
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        yield client


@pytest.mark.parametrize("where", ["in-memory", "dask-localcluster"])
def test_em_iteration_on_zarr(benchmark, cluster, zarr_image, where):
    image, lazy = zarr_image
    X = image.reshape(-1, 3).astype(np.float32)
    means = X[np.random.RandomState(0).choice(len(X), K, replace=False)].astype(np.float64)
    start = dict(means_init=means, weights_init=np.full(K, 1 / K),
                 precisions_init=np.full((K, 3), 1 / 400.0))
    benchmark.group = f"dask: diag EM per iteration {len(X) / 1e6:.0f} MP zarr K={K}"
    if where == "in-memory":
        data, threads = X, 2
    else:
        from emcore import _dask
        data, threads = lazy.reshape(-1, 3).astype(np.float32), None
        if len(X) < _dask.IN_MEMORY_BELOW:
            pytest.skip("below the in-memory threshold: run with EMCORE_BENCH_FULL=1")
    seconds, got = benchmark.pedantic(
        lambda: per_iteration(lambda n: _fit(data, start, n, threads), repeat=1), rounds=1)
    benchmark.extra_info.update(per_iteration_ms=round(seconds * 1e3, 2), pixels=len(X),
                                client_peak_mib=round(client_peak_mib()),
                                worker_peak_mib=worker_peak_mib(cluster))
    np.testing.assert_allclose(got, _fit(X, start, 11, 2), rtol=1e-9)


@pytest.mark.parametrize("where", ["in-memory", "dask-localcluster"])
def test_quantize_zarr(benchmark, cluster, zarr_image, where, tmp_path):
    image, lazy = zarr_image
    benchmark.group = f"dask: quantize {image.shape[0] * image.shape[1] / 1e6:.0f} MP zarr, 32"

    def run():
        if where == "in-memory":
            return quantize(image, 32)
        out, palette, labels = quantize(lazy, 32)
        start = time.perf_counter()
        labels.to_zarr(str(tmp_path / f"labels-{start}.zarr"))
        return out, palette, labels
    out, palette, labels = benchmark.pedantic(run, rounds=1)
    benchmark.extra_info.update(client_peak_mib=round(client_peak_mib()),
                                worker_peak_mib=worker_peak_mib(cluster))
    reference = quantize(image, 32)
    np.testing.assert_array_equal(palette, reference[1])
    np.testing.assert_array_equal(np.asarray(labels[:500]), reference[2][:500])
