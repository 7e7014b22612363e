"""compute_densities beside the vectorised numpy formulation and scikit-learn's score_samples."""
import numpy as np
import pytest
from _data import SIZES, image, kmeans_init

from emcore import Kernel, compute_densities

K_VALUES = [8, 32, 128]


def diag_kernels(img, k):
    means = kmeans_init(img, k)
    var = np.random.RandomState(1).uniform(50, 600, (k, 3))
    weights = np.full(k, 1.0 / k)
    return [Kernel(m, v, w) for m, v, w in zip(means, var, weights)]


def numpy_densities(img, kernels):
    """The usual vectorised answer: an (H, W, K, 3) array of scaled squared distances."""
    means = np.array([k.mean for k in kernels])
    var = np.array([k.covariance for k in kernels])
    weights = np.array([k.weight for k in kernels])
    norm = weights / np.sqrt((2 * np.pi) ** 3 * var.prod(axis=1))
    d2 = ((img[:, :, None, :].astype(np.float64) - means) ** 2 / var).sum(axis=-1)
    return (norm * np.exp(-0.5 * d2)).sum(axis=-1)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", K_VALUES)
def test_emcore(benchmark, size, k, n_threads):
    img = image(size)
    kernels = diag_kernels(img, k)
    benchmark.group = f"densities {size} K={k}"
    benchmark.extra_info.update(n_threads=n_threads, dtype="float64", input="uint8",
                                pixels=img.shape[0] * img.shape[1])
    out = benchmark(compute_densities, img, kernels, n_threads=n_threads)
    ref = numpy_densities(img[:50], kernels)
    np.testing.assert_allclose(out[:50], ref, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", K_VALUES)
def test_emcore_every_pixel(benchmark, size, k, n_threads):
    """The same pixels as float64: every pixel scored (no distinct-colour road)."""
    img = image(size)
    pixels = img.astype(np.float64)
    kernels = diag_kernels(img, k)
    benchmark.group = f"densities {size} K={k}"
    benchmark.extra_info.update(n_threads=n_threads, dtype="float64", input="float64",
                                pixels=img.shape[0] * img.shape[1])
    out = benchmark(compute_densities, pixels, kernels, n_threads=n_threads)
    np.testing.assert_array_equal(out, compute_densities(img, kernels, n_threads=n_threads))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", K_VALUES)
def test_numpy(benchmark, size, k):
    img = image(size)
    kernels = diag_kernels(img, k)
    benchmark.group = f"densities {size} K={k}"
    benchmark.extra_info.update(peer="numpy", dtype="float64")
    out = benchmark.pedantic(numpy_densities, (img, kernels), rounds=1 if k == 128 else 3)
    np.testing.assert_allclose(out, compute_densities(img, kernels), rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", [32])
def test_sklearn_score_samples(benchmark, size, k):
    from sklearn.mixture import GaussianMixture as SkGM
    img = image(size)
    kernels = diag_kernels(img, k)
    gm = SkGM(k, covariance_type="diag")
    gm.means_ = np.array([kk.mean for kk in kernels])
    gm.covariances_ = np.array([kk.covariance for kk in kernels])
    gm.precisions_cholesky_ = 1 / np.sqrt(gm.covariances_)
    gm.weights_ = np.array([kk.weight for kk in kernels])
    X = img.reshape(-1, 3).astype(np.float64)
    benchmark.group = f"densities {size} K={k}"
    benchmark.extra_info.update(peer="scikit-learn", dtype="float64")
    out = benchmark.pedantic(gm.score_samples, (X,), rounds=3)
    np.testing.assert_allclose(out, compute_densities(img, kernels, log=True).ravel(), rtol=1e-9)
