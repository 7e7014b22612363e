"""Spatial segmentation: one mean-field sweep and whole fits, beside dipy and ANTs.

The accuracy-and-time table over many phantoms is benchmarks/spatial.py; these
are the pytest-benchmark timings of the same work on one phantom, each result
checked (a sweep against the one-thread sweep, a fit against the true labels).
"""
import numpy as np
import pytest
from _phantoms import best_permutation_accuracy, phantom

from emcore import SpatialGaussianMixture, _kernels
from emcore.spatial import neighbourhood

SHAPES = {"2-D 256^2": (256, 256), "3-D 64^3": (64, 64, 64)}


def data_term(shape, k=3, seed=0):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    data = np.log(rng.dirichlet(np.ones(k), n)).astype(np.float32)
    return data, np.exp(data)


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("e_step", ["mean-field", "icm"])
def test_sweep(benchmark, name, e_step, n_threads):
    shape = SHAPES[name]
    grid = (1,) * (3 - len(shape)) + shape
    offsets, weights = neighbourhood(len(shape), len(shape))
    data, start = data_term(shape)
    inside = np.ones(len(data), dtype=np.uint8)
    hard = e_step == "icm"

    def sweep():
        q = start.copy()
        _kernels.mrf_sweeps(data, q, inside, grid, offsets, 1.5 * weights, hard, 1, n_threads)
        return q

    benchmark.group = f"mrf-sweep {name} K=3 {e_step}"
    benchmark.extra_info.update(n_threads=n_threads, voxels=len(data))
    q = benchmark(sweep)
    one = start.copy()
    _kernels.mrf_sweeps(data, one, inside, grid, offsets, 1.5 * weights, hard, 1, 1)
    np.testing.assert_array_equal(q, one)


@pytest.mark.parametrize("name", SHAPES)
def test_emcore_fit(benchmark, name, n_threads):
    shape = SHAPES[name]
    image, truth, _ = phantom(shape, 30)
    model = SpatialGaussianMixture(3, spatial_dims=len(shape), random_state=0,
                                   n_threads=n_threads)
    benchmark.group = f"spatial-fit {name} sigma 30"
    benchmark.extra_info.update(n_threads=n_threads)
    labels = benchmark.pedantic(lambda: model.fit(image).labels_, rounds=3)
    assert best_permutation_accuracy(labels, truth, 3) > 0.95


@pytest.mark.parametrize("name", SHAPES)
def test_dipy_fit(benchmark, name):
    tissue = pytest.importorskip("dipy.segment.tissue")
    shape = SHAPES[name]
    image, truth, _ = phantom(shape, 30)
    volume = image[:, :, None] if len(shape) == 2 else image

    def fit():
        return tissue.TissueClassifierHMRF(verbose=False).classify(volume, 3, 0.5)[1]

    benchmark.group = f"spatial-fit {name} sigma 30"
    benchmark.extra_info.update(peer="dipy", beta=0.5, n_threads=1)
    labels = benchmark.pedantic(fit, rounds=1).astype(int) - 1
    assert best_permutation_accuracy(labels.reshape(shape), truth, 3) > 0.5


@pytest.mark.parametrize("name", SHAPES)
def test_ants_fit(benchmark, name):
    ants = pytest.importorskip("ants")
    shape = SHAPES[name]
    image, truth, _ = phantom(shape, 30)
    a = ants.from_numpy(image.astype(np.float32))
    mask = ants.from_numpy(np.ones(shape, dtype=np.float32))
    radius = "x".join(["1"] * len(shape))

    def fit():
        return ants.atropos(a=a, x=mask, i="kmeans[3]", m=f"[0.5,{radius}]",
                            c="[5,0]")["segmentation"].numpy()

    benchmark.group = f"spatial-fit {name} sigma 30"
    benchmark.extra_info.update(peer="ANTs Atropos", mrf=0.5)
    labels = benchmark.pedantic(fit, rounds=1).astype(int) - 1
    assert best_permutation_accuracy(labels, truth, 3) > 0.5
