"""emcore/_estimation.py: the M-step maths and where empty components restart.

Re-seeding is a function of the distinct values and their total weight: fitting
every pixel and fitting the distinct colours weighted by their counts must give
the same model, also when a component or cluster empties and restarts, on an
image whose background is one colour (the case where picking single pixels put
two components on one colour).
"""
import math

import numpy as np
import pytest

from emcore import GaussianMixture, KMeans, unique_colors
from emcore._estimation import m_step, weighted_sum, worst_distinct_values


@pytest.fixture(scope="module")
def background_image():
    """40,000 pixels: 80% one grey, the rest 60 colours in uneven counts, shuffled."""
    rng = np.random.RandomState(5)
    palette = rng.randint(0, 256, size=(60, 3))
    counts = rng.randint(10, 260, size=60)
    counts = (counts * 8000 / counts.sum()).astype(int)
    pixels = np.vstack([np.full((40_000 - counts.sum(), 3), 200)]
                       + [np.repeat(c[None], n, axis=0) for c, n in zip(palette, counts)])
    return pixels[rng.permutation(len(pixels))].astype(np.float64)


def _far_start(pixels, k):
    """k - 2 components on data colours, two far from every pixel: both empty at once."""
    colors = np.unique(pixels, axis=0)
    means = np.vstack([colors[np.linspace(0, len(colors) - 1, k - 2).astype(int)],
                       [[-5000.0, -5000, -5000], [9000.0, 9000, 9000]]])
    return means


@pytest.mark.parametrize("cov_type", ["spherical", "diag", "tied", "full"])
def test_reseeding_is_the_same_for_pixels_and_distinct_colours(background_image, cov_type):
    k = 8
    start = dict(means_init=_far_start(background_image, k), weights_init=np.full(k, 1 / k),
                 precisions_init={"spherical": np.full(k, 0.01), "diag": np.full((k, 3), 0.01),
                                  "tied": np.eye(3) * 0.01,
                                  "full": np.repeat(np.eye(3)[None] * 0.01, k, axis=0)}[cov_type])
    every_pixel = GaussianMixture(k, covariance_type=cov_type, max_iter=6, tol=0,
                                  **start).fit(background_image)
    colors, counts, _ = unique_colors(background_image)
    weighted = GaussianMixture(k, covariance_type=cov_type, max_iter=6, tol=0,
                               **start).fit(colors, sample_weight=counts)
    # the far components restarted on two distinct colours, with their counts
    assert len(np.unique(every_pixel.means_[-2:].round(3), axis=0)) == 2
    np.testing.assert_allclose(every_pixel.weights_, weighted.weights_, rtol=1e-9)
    np.testing.assert_allclose(every_pixel.means_, weighted.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(every_pixel.lower_bounds_, weighted.lower_bounds_, rtol=1e-9)


def test_kmeans_relocation_is_the_same_for_pixels_and_distinct_colours(background_image):
    k = 8
    init = _far_start(background_image, k)
    every_pixel = KMeans(k, init=init, max_iter=20).fit(background_image)
    colors, counts, inverse = unique_colors(background_image)
    weighted = KMeans(k, init=init, max_iter=20).fit(colors, sample_weight=counts)
    np.testing.assert_allclose(every_pixel.cluster_centers_, weighted.cluster_centers_,
                               rtol=1e-9)
    np.testing.assert_allclose(every_pixel.inertia_, weighted.inertia_, rtol=1e-9)
    np.testing.assert_array_equal(every_pixel.labels_, weighted.labels_[inverse])
    assert len(np.unique(every_pixel.labels_)) == k


def test_worst_distinct_values_breaks_ties_by_value_not_position():
    X = np.array([[3.0, 0], [1, 0], [3, 0], [2, 0], [1, 0]])
    w = np.array([1.0, 2, 1, 0, 1])
    score = np.array([0.0, 0, 0, -9, 0])  # [2, 0] scores worst but has weight 0
    values, masks, totals = worst_distinct_values(X, w, score, 2)
    np.testing.assert_array_equal(values, [[1, 0], [3, 0]])
    np.testing.assert_array_equal(totals, [3, 2])
    np.testing.assert_array_equal(masks[0], [False, True, False, False, True])
    reordered = worst_distinct_values(X[::-1], w[::-1], score[::-1], 2)
    np.testing.assert_array_equal(reordered[0], values)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cov_type", ["spherical", "diag", "tied", "full"])
def test_m_step_of_hard_labels_is_the_textbook_estimate(cov_type, dtype):
    """A mixture's start: the kernels' sums of a hard assignment (centred near each
    cluster's mean, far from zero) through m_step, against float64 textbook moments."""
    from emcore import summaries
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(3000, 3)) + [200.0, -50.0, 1e3]).astype(dtype)
    w = rng.uniform(0.5, 2, size=3000)
    labels = rng.randint(0, 3, size=3000).astype(np.int32)
    labels[:5] = 7  # outside 0 .. K - 1: no component's
    centre = X[:3].astype(np.float64)
    full = cov_type in ("full", "tied")
    stats, _ = summaries.merge([summaries.posterior_sums(X, None, X[:3], full, w,
                                                         labels=labels, n_threads=2)])
    weights, means, cov = m_step(stats, centre, 0.0, cov_type, 1e-6)
    X64, w, labels = X[5:].astype(np.float64), w[5:], labels[5:]
    textbook_means = np.array([np.average(X64[labels == j], axis=0, weights=w[labels == j])
                               for j in range(3)])
    textbook_cov = [np.cov(X64[labels == j].T, aweights=w[labels == j], bias=True)
                    + 1e-6 * np.eye(3) for j in range(3)]
    nk = np.bincount(labels, w)
    expected = {"full": np.array(textbook_cov),
                "tied": sum(n * c for n, c in zip(nk, textbook_cov)) / nk.sum(),
                "diag": np.array([c.diagonal() for c in textbook_cov]),
                "spherical": np.array([c.diagonal().mean() for c in textbook_cov])}[cov_type]
    np.testing.assert_allclose(weights, nk / nk.sum(), rtol=1e-12)
    np.testing.assert_allclose(means, textbook_means, rtol=1e-12)
    np.testing.assert_allclose(cov, expected, rtol=1e-9)
    # the same arithmetic as the responsibilities 1 and 0: the same sums to the bit
    one_hot = np.zeros((3000, 3), dtype=dtype)
    one_hot[np.arange(5, 3000), labels] = 1
    by_q, _ = summaries.merge([summaries.posterior_sums(X, one_hot, X[:3], full,
                                                        np.r_[np.ones(5), w])])
    np.testing.assert_array_equal(stats, by_q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weighted_sum_is_the_float64_dot(dtype):
    rng = np.random.RandomState(3)
    w = rng.uniform(0, 50, 100_003)
    v = rng.normal(-7, 30, 100_003).astype(dtype)
    exact = math.fsum(float(a) * float(b) for a, b in zip(w, v))
    assert weighted_sum(w, v) == pytest.approx(exact, rel=1e-12)
    assert weighted_sum(w[:0], v[:0]) == 0.0
