"""Cross-cutting guarantees: properties over random inputs, the GIL, concurrent use,
thread-count independence and degenerate data."""
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emcore import EM, GaussianMixture, KMeans, Kernel, compute_densities, quantize

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def small_image_and_k(draw):
    n = draw(st.integers(2, 300))
    pixels = draw(arrays(np.uint8, (n, 3), elements=st.integers(0, 255)))
    distinct = len(np.unique(pixels, axis=0))
    k = draw(st.integers(1, min(distinct, 6)))
    return pixels, k


@SETTINGS
@given(small_image_and_k(), st.sampled_from(["spherical", "diag", "full"]))
def test_em_fits_are_finite_and_monotone(data, cov_type):
    pixels, k = data
    X = pixels.astype(np.float64)
    em = GaussianMixture(k, covariance_type=cov_type, max_iter=15, tol=0,
                         random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.isfinite(getattr(em, name)).all(), name
    lb = em.lower_bounds_
    assert np.isfinite(lb).all()
    assert (np.diff(lb) >= -1e-7 * np.maximum(1, np.abs(lb[1:]))).all(), lb
    proba = em.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert (proba >= 0).all()


@SETTINGS
@given(small_image_and_k())
def test_kmeans_fits_are_finite_and_use_every_cluster(data):
    pixels, k = data
    km = KMeans(k, random_state=0).fit(pixels)
    assert np.isfinite(km.cluster_centers_).all() and np.isfinite(km.inertia_)
    assert km.inertia_ >= 0
    assert len(np.unique(km.labels_)) == k  # no empty cluster is left


@st.composite
def kernels_and_pixels(draw):
    d = draw(st.integers(1, 4))
    k = draw(st.integers(1, 5))
    rng = np.random.RandomState(draw(st.integers(0, 2**31 - 1)))
    kernels = []
    for _ in range(k):
        mean = rng.uniform(0, 255, d)
        if draw(st.booleans()):
            cov = rng.uniform(1, 2000, d)
            dense = np.diag(cov)
        else:
            a = rng.randn(d, d) * rng.uniform(1, 30)
            dense = cov = a @ a.T + np.eye(d) * rng.uniform(0.5, 50)
        kernels.append((Kernel(mean, cov, rng.uniform(0.01, 1)), dense))
    pixels = rng.uniform(-50, 300, (draw(st.integers(1, 500)), d))
    return kernels, pixels


@SETTINGS
@given(kernels_and_pixels())
def test_densities_match_scipy(data):
    kernels, pixels = data
    got = compute_densities(pixels, [k for k, _ in kernels], log=True)
    terms = np.stack([np.log(k.weight) + np.reshape(
        multivariate_normal(k.mean, dense).logpdf(pixels), len(pixels))  # scalar for 1 pixel
        for k, dense in kernels], axis=1)
    np.testing.assert_allclose(got, logsumexp(terms, axis=1), rtol=1e-9, atol=1e-9)
    plain = compute_densities(pixels, [k for k, _ in kernels])
    assert (plain >= 0).all() and np.isfinite(plain).all()


@pytest.mark.parametrize("colors, k", [(1, 1), (2, 2), (256, 256)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_degenerate_and_extreme_images(colors, k, dtype):
    top = np.iinfo(dtype).max
    rng = np.random.RandomState(0)
    palette = rng.randint(0, top + 1, (colors, 3)).astype(dtype)
    palette[0] = 0
    if colors > 1:
        palette[1] = top  # the extremes 0 and 255 / 65535
    img = palette[np.arange(128 * 64) % colors].reshape(128, 64, 3)
    for method in ("gmm", "kmeans"):
        q, pal, _ = quantize(img, k, method=method, covariance_type="diag") if method == "gmm" \
            else quantize(img, k, method=method)
        assert np.isfinite(pal).all() and q.dtype == dtype
    em = EM(img, k).fit(10)
    assert np.isfinite(em.covariances_).all() and np.isfinite(em.lower_bound_)


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 2, 3), (3000, 3000, 3)], ids=["1px", "2px", "9MP"])
def test_tiny_and_large_images(shape):
    img = np.zeros(shape, dtype=np.uint8)
    img[..., 0] = (np.arange(shape[0] * shape[1]) % 2).reshape(shape[:2]) * 200
    k = 1 if shape[0] * shape[1] == 1 else 2
    em = EM(img, k, covariance_type="diag").fit(5)
    assert em.labels().shape == shape[:2] and np.isfinite(em.means_).all()


def test_gil_is_released_during_kernels():
    X = np.random.RandomState(0).uniform(0, 255, (3_000_000, 3))
    kernels = [Kernel(np.full(3, 100.0), np.full(3, 400.0), 1.0) for _ in range(16)]
    done = threading.Event()
    ticks = 0

    def work():
        compute_densities(X, kernels, n_threads=1)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():  # this loop only runs while the worker has let go of the GIL
        ticks += 1
    worker.join()
    assert ticks > 1000


def test_concurrent_fits_from_python_threads(coffee, chelsea, astronaut):
    images = [coffee, chelsea, astronaut, coffee[::-1]]
    alone = [EM(img, 5, random_state=1).fit(8).means_ for img in images]
    results = [None] * len(images)

    def fit(i):
        results[i] = EM(images[i], 5, random_state=1).fit(8).means_

    threads = [threading.Thread(target=fit, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scoring_is_identical_for_any_thread_count(coffee, dtype):
    X = np.tile(coffee.reshape(-1, 3), (2, 1)).astype(dtype)
    em = GaussianMixture(6, random_state=0, max_iter=5).fit(X[::7])
    for method in ("score_samples", "predict", "predict_proba"):
        outs = []
        for t in (1, 2, 3, 7):
            em.n_threads = t
            outs.append(getattr(em, method)(X))
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])
