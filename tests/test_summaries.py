"""emcore/summaries.py: em_sums against the textbook float64 E-step, lloyd_sums against
the full nearest-centre search."""
import numpy as np
import pytest
from scipy.special import logsumexp

from emcore import summaries
from emcore.summaries import lloyd_sums, merge


def textbook_em_sums(X, means, prec_chol, weights, sample_weight, centre):
    """([mass, sum r (x - c), sum r (x - c)^2] per component, sum w log p(x)), all in
    float64 ('diag')."""
    X = X.astype(np.float64)
    z = (X[:, None, :] - means[None]) * prec_chol[None]
    lp = (np.log(weights) + np.log(prec_chol).sum(axis=1) - 0.5 * X.shape[1] * np.log(2 * np.pi)
          - 0.5 * (z ** 2).sum(axis=2))
    log_p = logsumexp(lp, axis=1)
    r = np.exp(lp - log_p[:, None]) * sample_weight[:, None]
    d = X[:, None, :] - centre[None]
    return (np.concatenate([r.sum(axis=0)[:, None], np.einsum("nk,nkd->kd", r, d),
                            np.einsum("nk,nkd->kd", r, d ** 2)], axis=1),
            sample_weight @ log_p)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_em_sums_equal_the_textbook_and_far_components_get_exactly_nothing(dtype):
    """Two groups in whole tiles of their own (128 samples each), one component on
    each and one far from both: the far one's textbook responsibilities underflow to
    0 (thousands of nats down), and the kernel's sums for it are exactly 0 (it skips
    a component on a tile where every sample is below its exponential's floor)."""
    rng = np.random.RandomState(0)
    X = np.concatenate([rng.randn(256, 3) * 2 + 10, rng.randn(384, 3) * 3 + 70]).astype(dtype)
    w = rng.uniform(0.5, 3, len(X))
    means = np.array([[10.0, 10, 10], [70.0, 70, 70], [250.0, 250, 250]])
    prec_chol = np.array([[0.5, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3], [1.0, 1, 1]])
    weights = np.array([0.4, 0.5, 0.1])
    stats, loglik = summaries.merge([summaries.em_sums(X, means, prec_chol, weights, "diag",
                                                       w, block_size=256)])
    centre = summaries.em_centre(means, dtype)
    expected, expected_loglik = textbook_em_sums(X, means, prec_chol, weights, w, centre)
    assert (expected[2] == 0).all()
    np.testing.assert_array_equal(stats[2], 0.0)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    scale = np.abs(expected).max(axis=0)  # the first moments are sums of either sign
    np.testing.assert_allclose(stats, expected, rtol=rtol, atol=rtol * scale.max())
    np.testing.assert_allclose(stats[:, 1 + 3:], expected[:, 1 + 3:], rtol=rtol)
    np.testing.assert_allclose(loglik, expected_loglik, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [1, 2, 4])  # 3: the test above
def test_em_sums_equal_the_textbook_for_any_number_of_features(n_features, dtype):
    """Diagonal components on overlapping data (every responsibility counts), over
    whole and part-filled tiles: the kernel's sums and log-likelihood against the
    textbook float64 E-step (two features take their own one-pass sums)."""
    rng = np.random.RandomState(n_features)
    X = rng.normal(0, 2, (1000, n_features)).astype(dtype)
    w = rng.uniform(0.5, 3, len(X))
    means = rng.normal(0, 1, (4, n_features))
    prec_chol = rng.uniform(0.4, 1.5, (4, n_features))
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    stats, loglik = summaries.merge([summaries.em_sums(X, means, prec_chol, weights, "diag",
                                                       w, block_size=256)])
    centre = summaries.em_centre(means, dtype)
    expected, expected_loglik = textbook_em_sums(X, means, prec_chol, weights, w, centre)
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(stats, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    np.testing.assert_allclose(loglik, expected_loglik, rtol=rtol)


@pytest.mark.parametrize("n_features", [1, 2, 3, 5])  # 2 and 3 have one-pass sums of their own
@pytest.mark.parametrize("full", [False, True])
def test_posterior_sums_are_the_weighted_moments_and_merge_over_pieces(full, n_features):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, n_features))
    q = rng.dirichlet(np.ones(4), len(X))
    w = rng.uniform(0, 2, len(X))
    centre = rng.normal(size=(4, n_features))
    whole, _ = summaries.merge([summaries.posterior_sums(X, q, centre, full, w)])
    r = q * w[:, None]
    iu = np.triu_indices(n_features)
    for k in range(4):  # the textbook float64 moments
        d = X - centre[k]
        second = (d[:, :, None] * d[:, None, :])[:, iu[0], iu[1]] if full else d ** 2
        expected = np.concatenate([[r[:, k].sum()], r[:, k] @ d, r[:, k] @ second])
        np.testing.assert_allclose(whole[k], expected, rtol=1e-12)
    bs = 256  # one block size for the data set; pieces cut at block multiples: bitwise
    blocked, _ = summaries.merge([summaries.posterior_sums(X, q, centre, full, w,
                                                           block_size=bs)])
    parts = [summaries.posterior_sums(X[a:b], q[a:b], centre, full, w[a:b], block_size=bs)
             for a, b in ((0, 4 * bs), (4 * bs, len(X)))]
    np.testing.assert_array_equal(summaries.merge(parts)[0], blocked)
    np.testing.assert_allclose(blocked, whole, rtol=1e-12)
    with pytest.raises(ValueError, match="NaN"):
        bad = X.copy()
        bad[7, -1] = np.nan
        summaries.posterior_sums(bad, q, centre, full, w)



@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_pass_narrowed_by_the_last_ones_reach_equals_the_full_search(coffee, dtype,
                                                                         channels):
    """Lloyd's iterations at 64 colours, each pass narrowed by the previous pass's
    reach and the centres' largest move (the fit's own bookkeeping): every pass's
    labels, sums and inertia bitwise those of a pass without it, whose labels match
    a recomputation; the reach written is each tile's largest nearest distance. A
    reach that bounds nothing (zeros, negative, NaN) still finds every nearest centre."""
    from emcore import _kernels
    from emcore.image import distinct_colors
    from emcore.summaries import cluster_centers, reach_length
    pixels = coffee.reshape(-1, 3)
    if channels == 4:
        alpha = (pixels[:, 0].astype(np.int32) + pixels[:, 1]) // 2
        pixels = np.concatenate([pixels, alpha[:, None].astype(np.uint8)], axis=1)
    colors, counts, _ = distinct_colors(pixels, z_order=True)
    X, w = colors[::3].astype(dtype), counts[::3].astype(np.float64)
    bs = 1000  # not a multiple of the tile: a block's last tile is short
    centers = X[np.random.RandomState(1).choice(len(X), 64, replace=False)].astype(dtype)
    reach = np.empty(reach_length(len(X), bs))
    last, narrowed = None, 0
    for _ in range(6):
        plain_labels = np.empty(len(X), dtype=np.int32)
        plain, plain_inertia = merge([lloyd_sums(X, centers, w, block_size=bs,
                                                 labels=plain_labels)])
        assert last is None or not np.array_equal(last, centers)
        labels = np.empty(len(X), dtype=np.int32)
        stats, inertia = merge([lloyd_sums(X, centers, w, block_size=bs, labels=labels,
                                           reach=reach, reach_centers=last)])
        np.testing.assert_array_equal(labels, plain_labels)
        np.testing.assert_array_equal(stats, plain)
        assert inertia == plain_inertia
        narrowed += last is not None
        last = centers.copy()
        centers = cluster_centers(stats, centers)[0].astype(dtype)
    assert narrowed == 5
    d = (_float32_search(X, last) if dtype == np.float32
         else ((X[:, None, :] - last[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_array_equal(labels, d.argmin(axis=1))
    nearest = d.min(axis=1)
    per_block = -(-bs // _kernels.TILE)  # a slot per tile of every block
    for block, b in enumerate(range(0, len(X), bs)):
        for tile, i in enumerate(range(b, min(b + bs, len(X)), _kernels.TILE)):
            top = nearest[i:min(i + _kernels.TILE, b + bs, len(X))].max()
            # as the kernel rounds its distances: float32 with or without fused
            # multiply-adds (the baseline build has none), float64 likewise
            assert reach[block * per_block + tile] == pytest.approx(
                top, rel=1e-6 if dtype == np.float32 else 1e-12)
    for wrong in (0.0, -5.0, np.nan):
        reach[:] = wrong
        labels = np.empty(len(X), dtype=np.int32)
        lloyd_sums(X, last, w, block_size=bs, labels=labels, reach=reach, reach_centers=last)
        assert (labels >= 0).all() and (labels < len(last)).all()


def _float32_search(X, centers):
    """The squared distances the RGB(A) float32 kernel computes, operation by operation
    ((c - x)^2 for the first channel, then fused multiply-adds), and the nearest centre."""
    v = [(centers[None, :, i] - X[:, None, i]).astype(np.float32) for i in range(X.shape[1])]
    d = v[0] * v[0]
    for i in range(1, X.shape[1]):  # a fused multiply-add rounds once: exact in float64
        d = (v[i].astype(np.float64) ** 2 + d).astype(np.float32)
    return d


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("z_order", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_pruned_lloyd_pass_equals_the_full_search(coffee, z_order, dtype, channels):
    """From 16 centres on, each tile searches only the centres its bounding box lets
    be nearest. Adding a 16th centre that is nobody's nearest switches the pruning on
    and must change nothing (labels, sums and inertia bitwise those of the 15-centre
    full search); labels and inertia also match a recomputation of the distances.
    Four channels: RGB and an alpha made from red and green (the RGBA kernel path)."""
    from emcore.image import distinct_colors
    pixels = coffee.reshape(-1, 3)
    if channels == 4:
        alpha = (pixels[:, 0].astype(np.int32) + pixels[:, 1]) // 2
        pixels = np.concatenate([pixels, alpha[:, None].astype(np.uint8)], axis=1)
    colors, counts, _ = distinct_colors(pixels, z_order=z_order)
    X, w = colors[::4].astype(dtype), counts[::4].astype(np.float64)  # order kept
    rng = np.random.RandomState(0)
    for k in (15, 63, 255):
        centers = X[rng.choice(len(X), k, replace=False)] + dtype(0.25)
        full_labels = np.empty(len(X), dtype=np.int32)
        full, full_inertia = merge([lloyd_sums(X, centers, w, labels=full_labels)])
        far = np.concatenate([centers, np.full((1, channels), 5000, dtype=dtype)])
        pruned_labels = np.empty(len(X), dtype=np.int32)
        pruned, pruned_inertia = merge([lloyd_sums(X, far, w, labels=pruned_labels)])
        np.testing.assert_array_equal(pruned_labels, full_labels)
        np.testing.assert_array_equal(pruned[:k], full)
        assert pruned_inertia == full_inertia and not pruned[k].any()
        if dtype == np.float32:
            d = _float32_search(X, far)
        else:
            d = ((X[:, None, :] - far[None, :, :]) ** 2).sum(axis=2)
        np.testing.assert_array_equal(pruned_labels, d.argmin(axis=1))
        np.testing.assert_allclose(pruned_inertia, (w * d.min(axis=1)).sum(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, d, k", [(1, 3, 1), (127, 1, 4), (129, 3, 256), (5000, 4, 7),
                                     (3000, 9, 3)])
def test_labelled_sums_equal_bincount_for_any_thread_count(dtype, n, d, k):
    """Each cluster's weight and weighted sums for given labels (the image pipeline's
    segment means) against numpy's float64 bincount; the same bits on 1 to 3 threads
    and for a block size cutting tiles apart; one shared weight as N of them."""
    rng = np.random.default_rng(n + d + k)
    X = rng.normal(size=(n, d)).astype(dtype)
    labels = rng.integers(0, k, n).astype(np.int32)
    labels[: n // 3] = np.sort(labels[: n // 3])  # runs of one label too
    w = rng.random(n) * 3
    got, _ = merge([summaries.labelled_sums(X, labels, k, w)])
    want = np.column_stack([np.bincount(labels, w, minlength=k)] + [
        np.bincount(labels, w * X[:, j].astype(np.float64), minlength=k) for j in range(d)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for n_threads, block_size in [(2, None), (3, None), (1, 200)]:
        again, _ = merge([summaries.labelled_sums(X, labels, k, w, n_threads=n_threads)])
        np.testing.assert_array_equal(again, got)
        if block_size:
            cut, _ = merge([summaries.labelled_sums(X, labels, k, w, block_size=block_size)])
            np.testing.assert_allclose(cut, want, rtol=1e-12, atol=1e-12)
    shared, _ = merge([summaries.labelled_sums(X, labels, k, None)])
    ones, _ = merge([summaries.labelled_sums(X, labels, k, np.ones(n))])
    np.testing.assert_array_equal(shared, ones)


def test_labelled_sums_refuse_labels_outside_the_clusters():
    from emcore._kernels import KernelArgumentError
    X = np.zeros((10, 3))
    for bad in (np.full(10, 3, np.int32), np.full(10, -1, np.int32)):
        with pytest.raises(KernelArgumentError, match="labels must lie"):
            summaries.labelled_sums(X, bad, 3)
    with pytest.raises(KernelArgumentError, match="labels"):
        summaries.labelled_sums(X, np.zeros(9, np.int32), 3)
