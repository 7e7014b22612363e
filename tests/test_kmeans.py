"""KMeans against scikit-learn's Lloyd from the same start, and the tutorial's sequence."""
import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans

from emcore import KMeans, load, load_image, rgb_vector_to_image, summaries
from emcore.image import Image
from emcore._validation import check_sample_weight, kernel_weights


@pytest.fixture(scope="module")
def jittered(coffee):
    """Photo pixels plus sub-unit noise: no exact distance ties, whose order is arbitrary."""
    X = coffee.reshape(-1, 3).astype(np.float64)
    return X + np.random.RandomState(1).uniform(-0.5, 0.5, X.shape)


def start(X, k, seed=0):
    return X[np.random.RandomState(seed).choice(len(X), k, replace=False)]


@pytest.mark.parametrize("k, max_iter", [(8, 300), (16, 5)])
def test_same_result_as_scikit_learn_float64(jittered, k, max_iter):
    init = start(jittered, k)
    ours = KMeans(k, init=init, max_iter=max_iter).fit(jittered)
    sk = SkKMeans(k, init=init, n_init=1, max_iter=max_iter).fit(jittered)
    np.testing.assert_allclose(ours.inertia_, sk.inertia_, rtol=1e-6)
    np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, rtol=1e-6)
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.n_iter_ == sk.n_iter_ and ours.iterations == ours.n_iter_
    np.testing.assert_array_equal(ours.predict(jittered[:1000]), sk.predict(jittered[:1000]))
    np.testing.assert_allclose(ours.transform(jittered[:500]), sk.transform(jittered[:500]),
                               rtol=1e-6)
    np.testing.assert_allclose(ours.score(jittered), sk.score(jittered), rtol=1e-6)


def test_same_inertia_as_scikit_learn_float32(jittered):
    X = jittered.astype(np.float32)
    init = start(X, 8, seed=2)
    ours = KMeans(8, init=init).fit(X)
    sk = SkKMeans(8, init=init, n_init=1).fit(X)
    np.testing.assert_allclose(ours.inertia_, sk.inertia_, rtol=1e-4)
    # float32 coordinates: compare to 1e-4 of the data's range, not of each coordinate
    np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, rtol=0,
                               atol=1e-4 * np.ptp(X))


def test_kmeans_plusplus_is_as_good_as_scikit_learns(jittered):
    X = jittered[::3]
    ours = np.mean([KMeans(16, random_state=s).fit(X).inertia_ for s in range(3)])
    sk = np.mean([SkKMeans(16, n_init=1, random_state=s).fit(X).inertia_ for s in range(3)])
    assert ours <= 1.05 * sk, (ours, sk)


def reference_plusplus(X, w, first, draws):
    """Greedy k-means++ as the textbook states it, every distance computed (float64)."""
    X = X.astype(np.float64)
    chosen = [first]
    closest = ((X - X[first]) ** 2).sum(axis=1)
    for row in draws:
        cumulative = np.cumsum(w * closest)
        candidates = np.minimum(np.searchsorted(cumulative, row * cumulative[-1], side="right"),
                                len(X) - 1)
        potentials = [np.sum(w * np.minimum(closest, ((X - X[c]) ** 2).sum(axis=1)))
                      for c in candidates]
        chosen.append(candidates[int(np.argmin(potentials))])
        closest = np.minimum(closest, ((X - X[chosen[-1]]) ** 2).sum(axis=1))
    return np.array(chosen)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data", ["jittered", "distinct colours"])
@pytest.mark.parametrize("k", [1, 7, 256])
def test_kmeans_plusplus_chooses_the_textbook_centres(jittered, chelsea, data, k, dtype):
    """The kernel skips tiles whose bounding box is too far to matter; distinct colours
    come sorted, so most tiles are skipped there: the centres must still be the
    ones computing every distance gives."""
    from emcore.kmeans import kmeans_plusplus
    if data == "jittered":
        X = np.ascontiguousarray(jittered[::7])
        w = np.ones(len(X))
    else:
        X, w = np.unique(chelsea.reshape(-1, 3), axis=0, return_counts=True)
        w = w.astype(np.float64)
    X = X.astype(dtype)
    n_trials = 2 + int(np.log(k))
    rng = np.random.RandomState(5)
    expected_first = rng.choice(len(X), p=w / w.sum())
    expected = reference_plusplus(X, w, expected_first, rng.uniform(size=(k - 1, n_trials)))
    for n_threads in (1, 2, 3):
        got = kmeans_plusplus(X, w, k, np.random.RandomState(5), n_threads)
        np.testing.assert_array_equal(got, X[expected])


def test_kmeans_plusplus_is_the_same_on_every_threaded_call(chelsea):
    """A race between threads shows only now and then (a scalar written through a
    pointer in a prange body is shared by the threads: it once made one call in ten
    on two threads pick other centres), so the same seeding is run many times."""
    from emcore.kmeans import kmeans_plusplus
    X, w = np.unique(chelsea.reshape(-1, 3), axis=0, return_counts=True)
    X, w = X.astype(np.float64), w.astype(np.float64)
    one_thread = kmeans_plusplus(X, w, 256, np.random.RandomState(5), 1)
    for _ in range(40):
        np.testing.assert_array_equal(
            kmeans_plusplus(X, w, 256, np.random.RandomState(5), 2), one_thread)


def _weightings(rng, n):
    """Shared, random, integer with zeros, 1e+-130 and subnormal weights."""
    return [check_sample_weight(None, n), rng.uniform(0, 1, n),
            rng.randint(0, 3, n) + np.eye(1, n, rng.randint(n)).ravel(),
            np.exp(rng.uniform(-300, 300, n)), rng.uniform(0, 1e-310, n) + 1e-320]


def test_weighted_draws_replay_numpys_choice():
    """k-means++'s first centre and the 'random' starts are drawn by a kernel that
    replays numpy's RandomState.choice(N, p=w / w.sum()) (with and without
    replacement) without its N-long arrays: the same samples for every seed and
    weighting, the same uniforms used, and at the cumulative sums' own boundaries."""
    from emcore import _kernels
    from emcore.kmeans import weighted_samples
    rng = np.random.RandomState(1)
    for trial in range(600):
        n = rng.randint(1, 2000)
        w = _weightings(rng, n)[trial % 5]
        seed = rng.randint(2**31)
        for stride in (1, 7, 64, _kernels.DRAW_STRIDE):  # checkpoints change no draw
            one = _kernels.weighted_draws(
                kernel_weights(w), n, w.sum(),
                np.array([np.random.RandomState(seed).random_sample()]),
                np.empty(0, dtype=np.intp), stride=stride)[0][0]
            assert one == np.random.RandomState(seed).choice(n, p=w / w.sum())
        size = rng.randint(1, min(int(np.count_nonzero(w / w.sum())), 30) + 1)
        ours, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
        np.testing.assert_array_equal(weighted_samples(w, size, ours),
                                      theirs.choice(n, size, replace=False, p=w / w.sum()))
        assert ours.random_sample() == theirs.random_sample()  # the same uniforms taken
    for n in (1, 3, 10, 999):  # u on and beside every boundary of the normalised sums
        w = check_sample_weight(None, n)
        cdf = np.cumsum(w / w.sum())
        cdf /= cdf[-1]
        u = np.unique(np.concatenate([cdf, np.nextafter(cdf, 0), np.nextafter(cdf, 2)]))
        u = np.ascontiguousarray(u[(u >= 0) & (u < 1)][::-1])  # in any order
        for stride in (1, 2, 5, 64):
            drawn, positive = _kernels.weighted_draws(kernel_weights(w), n, w.sum(), u,
                                                      np.empty(0, dtype=np.intp), stride)
            np.testing.assert_array_equal(drawn, np.searchsorted(cdf, u, side="right"))
            assert positive == n
    # exclusions across checkpoints: as numpy's choice with those p set to 0
    rng = np.random.RandomState(7)
    for trial in range(200):
        n = rng.randint(2, 500)
        w = _weightings(rng, n)[trial % 5]
        excluded = np.unique(rng.randint(0, n, rng.randint(0, n // 2 + 1))).astype(np.intp)
        p = w / w.sum()
        p[excluded] = 0
        if not p.sum() > 0:
            continue
        u = np.sort(rng.uniform(size=5))
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        for stride in (1, 3, 17):
            drawn, positive = _kernels.weighted_draws(kernel_weights(w), n, w.sum(), u,
                                                      excluded, stride)
            np.testing.assert_array_equal(drawn, np.searchsorted(cdf, u, side="right"))
            assert positive == np.count_nonzero(p)
    with pytest.raises(ValueError, match="Fewer non-zero"):
        weighted_samples(np.array([0.0, 1.0, 0.0]), 2, np.random.RandomState(0))
    none = np.empty(0, dtype=np.intp)
    for bad in [(np.ones(3), 4, 3.0, np.array([0.5]), none),
                (np.ones(3), 3, 0.0, np.array([0.5]), none),
                (np.ones(3), 3, 3.0, np.array([1.0]), none),
                (np.ones(3), 3, 3.0, np.array([0.5]), np.array([2, 1], dtype=np.intp)),
                (np.ones(3), 3, 3.0, np.array([0.5]), np.array([3], dtype=np.intp)),
                (np.ones(3, np.float32), 3, 3.0, np.array([0.5]), none),
                (np.ones(3), 3, 3.0, np.array([0.5]), none, 0)]:
        with pytest.raises(_kernels.KernelArgumentError):
            _kernels.weighted_draws(*bad)


def test_kmeans_plusplus_on_points_fewer_than_centres():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    from emcore.kmeans import kmeans_plusplus
    centers = kmeans_plusplus(X, np.ones(3), 5, np.random.RandomState(0), 1)
    assert centers.shape == (5, 2)
    assert {tuple(c) for c in centers} == {(0.0, 0.0), (1.0, 1.0)}


def test_random_state_repeats_exactly(coffee):
    X = coffee.reshape(-1, 3)
    a = KMeans(8, random_state=44).fit(X)
    b = KMeans(8, random_state=44).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_any_thread_count(jittered, dtype):
    X = np.tile(jittered, (2, 1)).astype(dtype)  # 480k samples, hundreds of blocks
    fits = [KMeans(16, random_state=0, max_iter=10, n_threads=t).fit(X) for t in (1, 2, 3, 7)]
    for f in fits[1:]:
        np.testing.assert_array_equal(f.cluster_centers_, fits[0].cluster_centers_)
        np.testing.assert_array_equal(f.labels_, fits[0].labels_)
        assert f.inertia_ == fits[0].inertia_


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [3, 2, 1, 4])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", [9, 3])
def test_lloyd_pass_sums_each_block_as_float64_does(dtype, n_features, weighted, k):
    """The pass's per-block cluster weights, sums and inertia against float64 numpy
    over the same blocks; the data mixes long runs of one cluster (smooth, crossing
    tile and block edges: the kernel sums a run before adding it) with shuffled rows
    (at 3 clusters their tiles change label often enough to be summed by masks)."""
    rng = np.random.RandomState(3)
    n = 3 * 2048 + 77  # three blocks and a part-filled tile
    smooth = np.cumsum(rng.normal(0, 1.5, (n // 2, n_features)), axis=0)
    shuffled = rng.uniform(smooth.min(), smooth.max(), (n - n // 2, n_features))
    X = np.vstack([smooth, shuffled]).astype(dtype)
    centers = X[rng.choice(n, k, replace=False)]
    w = rng.uniform(0, 3, n) if weighted else None
    labels = np.empty(n, dtype=np.int32)
    got = summaries.lloyd_sums(X, centers, w, labels=labels)
    x64, c64 = X.astype(np.float64), centers.astype(np.float64)
    sq = ((x64[:, None, :] - c64[None]) ** 2).sum(axis=2)
    # the labels are the nearest centres (float rounding may only swap near-ties)
    gap = np.sort(sq, axis=1)[:, 1] - sq.min(axis=1)
    clear = gap > 1e-3 * sq.min(axis=1) + 1e-9
    np.testing.assert_array_equal(labels[clear], sq.argmin(axis=1)[clear])
    ww = np.ones(n) if w is None else w
    block = summaries.block_size_for(n)
    assert got.stats.shape[0] == -(-n // block) >= 3
    for b, rows in enumerate(range(0, n, block)):
        part = slice(rows, rows + block)
        lab, wb, xb = labels[part], ww[part], x64[part]
        expected = np.column_stack([np.bincount(lab, wb, minlength=k)] + [
            np.bincount(lab, wb * xb[:, d], minlength=k) for d in range(n_features)])
        np.testing.assert_allclose(got.stats[b], expected, rtol=1e-12, atol=1e-9)
        inertia = float((wb * sq[part][np.arange(len(lab)), lab]).sum())
        rtol = 1e-6 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got.totals[b], inertia, rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [2, 7, 33])
def test_lloyd_pass_labels_are_the_first_nearest_centre(dtype, k):
    """Integer colours against centres placed so that many pixels are exactly as far
    from two or more centres (exact in float32 too): each label is the lowest index
    among the nearest, as a float64 argmin picks it, for 2, 7 and 33 centres."""
    rng = np.random.RandomState(k)
    grid = np.stack(np.meshgrid(*[np.arange(0, 8, 2)] * 3), axis=-1).reshape(-1, 3)
    centers = grid[rng.permutation(len(grid))[:k]].astype(dtype)
    centers[k // 2] = centers[0]  # an exact duplicate: index 0 must win it
    X = rng.randint(0, 7, (1000, 3)).astype(dtype)  # odd coordinates lie midway
    labels = np.empty(len(X), dtype=np.int32)
    got = summaries.lloyd_sums(X, centers, labels=labels)
    sq = ((X.astype(np.float64)[:, None, :] - centers.astype(np.float64)[None]) ** 2).sum(2)
    assert ((sq == sq.min(axis=1, keepdims=True)).sum(axis=1) > 1).sum() >= 50  # ties
    np.testing.assert_array_equal(labels, sq.argmin(axis=1))
    np.testing.assert_allclose(got.totals.sum(), sq.min(axis=1).sum(), rtol=1e-12)


def test_no_weights_equal_unit_weights_bitwise(jittered):
    """Unweighted fits pass the kernels one shared weight instead of an N-long array."""
    a = KMeans(6, random_state=0, tol=0, max_iter=5).fit(jittered)
    b = KMeans(6, random_state=0, tol=0, max_iter=5).fit(jittered,
                                                         sample_weight=np.ones(len(jittered)))
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_


def test_sample_weight_equals_repeated_rows(jittered):
    X = jittered[:5000]
    counts = np.random.RandomState(3).randint(0, 4, len(X))
    init = start(np.repeat(X, counts, axis=0), 6)
    a = KMeans(6, init=init, tol=0).fit(X, sample_weight=counts)
    b = KMeans(6, init=init, tol=0).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-10)
    assert a.n_iter_ == b.n_iter_


def test_empty_cluster_is_relocated(jittered):
    init = np.vstack([start(jittered, 3), [[1e4, 1e4, 1e4]]])  # no sample is nearest to it
    km = KMeans(4, init=init, max_iter=50).fit(jittered)
    sk = SkKMeans(4, init=init, n_init=1, max_iter=50).fit(jittered)
    assert np.isfinite(km.cluster_centers_).all()
    assert len(np.unique(km.labels_)) == 4
    np.testing.assert_allclose(km.inertia_, sk.inertia_, rtol=1e-6)


def test_tutorial_sequence(tmp_path):
    from pathlib import Path
    img = load_image(Path(__file__).resolve().parents[1] / "examples" / "data" / "chelsea.png")
    assert img.shape == (300, 451, 3) and img.rgb_vector.shape == (300 * 451, 3)
    kmeans = KMeans(n_clusters=8, random_state=44).fit(img.rgb_vector)
    centroids = kmeans.cluster_centers_
    quantized = rgb_vector_to_image(centroids[kmeans.labels_], img.shape)
    assert isinstance(quantized, Image) and quantized.shape == img.shape
    assert len(np.unique(quantized.rgb_vector, axis=0)) == 8
    # the tutorial's cost on float values: it is the inertia
    cost = ((img.rgb_vector.astype(np.float64) - centroids[kmeans.labels_]) ** 2).sum()
    np.testing.assert_allclose(cost, kmeans.inertia_, rtol=1e-5)
    # positional arguments as the tutorial wrote them
    again = KMeans(8, 1e-4, 300, 44).fit(img.rgb_vector)
    np.testing.assert_array_equal(again.labels_, kmeans.labels_)


def test_save_and_load(tmp_path, jittered):
    km = KMeans(5, random_state=0).fit(jittered[:20000])
    km.save(tmp_path / "km.npz")
    back = load(tmp_path / "km.npz")
    np.testing.assert_array_equal(back.predict(jittered[:20000]), km.labels_)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_clusters=0), ValueError, "n_clusters"),
    (dict(n_clusters=1.5), TypeError, "n_clusters"),
    (dict(n_clusters=11), ValueError, "more than the 10 samples"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(tol=-1), ValueError, "tol"),
    (dict(init="magic"), ValueError, "init"),
    (dict(init=np.zeros((2, 2))), ValueError, "initial centers .* number of clusters"),
    (dict(n_init=0), ValueError, "n_init"),
    (dict(n_threads=-1), ValueError, "n_threads"),
    (dict(random_state="x"), TypeError, "random_state"),
    (dict(over_relaxation=2.0), ValueError, "over_relaxation must be below 2"),
    (dict(over_relaxation=0.5), ValueError, "over_relaxation must be >= 1"),
    (dict(over_relaxation=float("nan")), ValueError, "over_relaxation must be finite"),
    (dict(over_relaxation="1.5"), TypeError, "over_relaxation must be a real number"),
])
def test_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        KMeans(**{"n_clusters": 3, **kwargs}).fit(np.random.RandomState(0).rand(10, 3))


def test_predict_before_fit():
    with pytest.raises(ValueError, match="not fitted"):
        KMeans(2).predict(np.zeros((3, 3)))


def lattice_lloyd_reference(X, w, centers, step, low, high, max_iter=100):
    """Lloyd's iterations on the lattice in float64 numpy, brute-force nearest centre."""
    X, w = np.asarray(X, dtype=np.float64), np.asarray(w, dtype=np.float64)

    def on_lattice(c):
        return np.clip(np.rint(c / step) * step, low, high)

    def nearest(c):
        d = ((X[:, None, :] - c[None]) ** 2).sum(axis=2)
        return d.argmin(axis=1), (w * d.min(axis=1)).sum()
    c = on_lattice(np.asarray(centers, dtype=np.float64))
    for _ in range(max_iter):
        labels, _ = nearest(c)
        moved = c.copy()
        for j in range(len(c)):
            mine = labels == j
            if w[mine].sum() > 0:
                moved[j] = (w[mine, None] * X[mine]).sum(axis=0) / w[mine].sum()
        moved = on_lattice(moved)
        if np.array_equal(moved, c):
            break
        c = moved
    labels, inertia = nearest(c)
    return c, labels, inertia


@pytest.mark.parametrize("k", [5, 20])
@pytest.mark.parametrize("step, high, dtype", [(1, 255, np.float32), (257, 65535, np.float64)])
def test_lattice_lloyd_matches_a_float64_reference_and_never_adds_error(k, step, high, dtype):
    from emcore.kmeans import lattice_lloyd
    rng = np.random.RandomState(3)
    X = (rng.randint(0, high // step + 1, (600, 3)) * step).astype(dtype)
    X += rng.randint(-step // 2, step // 2 + 1, X.shape).clip(-X, high - X).astype(dtype)
    w = rng.randint(1, 50, len(X)).astype(np.float64)
    start = X[rng.choice(len(X), k, replace=False)].astype(np.float64) + rng.uniform(
        -3 * step, 3 * step, (k, 3))
    centers, labels, inertia = lattice_lloyd(X, w, start, step, 0, high, n_threads=2)
    ref_centers, ref_labels, ref_inertia = lattice_lloyd_reference(X, w, start, step, 0, high)
    np.testing.assert_array_equal(centers, ref_centers)
    np.testing.assert_array_equal(labels, ref_labels)
    assert inertia == pytest.approx(ref_inertia, rel=1e-12)
    assert (centers % step == 0).all() and centers.min() >= 0 and centers.max() <= high
    rounded = np.clip(np.rint(start / step) * step, 0, high)
    start_error = (w * ((X[:, None].astype(np.float64) - rounded[None]) ** 2).sum(2).min(1)).sum()
    assert inertia <= start_error
    # a fixed point: every centre is its samples' mean put on the lattice
    for j in np.unique(labels):
        mean = (w[labels == j, None] * X[labels == j]).sum(0) / w[labels == j].sum()
        np.testing.assert_array_equal(centers[j], np.clip(np.rint(mean / step) * step, 0, high))


def test_a_fit_narrowed_by_each_pass_reach_is_the_plain_fit_on_any_thread_count(chelsea,
                                                                                  monkeypatch):
    """From 16 centres on, every pass of a fit is narrowed by the last pass's reach.
    The fitted centres, labels, inertia and iteration count are bitwise those of the
    same fit without it (the plain box-pruned passes), on 1, 2 and 3 threads."""
    from emcore import _kernels
    from emcore.image import distinct_colors
    colors, counts, _ = distinct_colors(chelsea.reshape(-1, 3), z_order=True)
    X, w = colors.astype(np.float32), counts.astype(np.float64)

    def fit(n_threads):
        m = KMeans(64, random_state=3, n_threads=n_threads).fit(X, sample_weight=w)
        return m.cluster_centers_, m.labels_, m.inertia_, m.n_iter_

    narrowed = [fit(t) for t in (1, 2, 3)]
    with monkeypatch.context() as patch:
        patch.setattr(_kernels, "lloyd_prunes", lambda n_centers, n_features: False)
        plain = fit(1)
    assert plain[3] > 5  # enough passes for the reach to matter
    for got in narrowed:
        np.testing.assert_array_equal(got[0], plain[0])
        np.testing.assert_array_equal(got[1], plain[1])
        assert got[2] == plain[2] and got[3] == plain[3]


@pytest.mark.parametrize("relax", [1.0, 1.5, 1.8, 1.99])
def test_the_relaxed_step_lowers_the_error_of_the_held_labels_as_the_formula_says(relax):
    """With the labels held, each cluster's weighted squared error at the stepped centre
    is its error about the mean plus W (1 - relax)^2 ||c - mean||^2 (textbook float64),
    so never above the error at the old centre; a relocated cluster goes to its mean."""
    from emcore.kmeans import relaxed_step
    rng = np.random.RandomState(4)
    X, w = rng.rand(500, 3) * 255, rng.randint(1, 9, 500).astype(np.float64)
    labels = rng.randint(0, 6, 500)
    centers = rng.rand(6, 3) * 255
    means = np.array([np.average(X[labels == j], axis=0, weights=w[labels == j])
                      for j in range(6)])
    stepped = relaxed_step(centers, means, relax, np.array([2]))

    def error(c):
        return np.array([(w[labels == j] * ((X[labels == j] - c[j]) ** 2).sum(1)).sum()
                         for j in range(6)])
    about_mean, weight = error(means), np.bincount(labels, w, 6)
    expected = about_mean + weight * (1 - relax) ** 2 * ((centers - means) ** 2).sum(1)
    expected[2] = about_mean[2]
    np.testing.assert_allclose(error(stepped), expected, rtol=1e-10)
    assert (error(stepped) <= error(centers)).all()
    np.testing.assert_array_equal(stepped[2], means[2])
    if relax == 1.0:
        np.testing.assert_array_equal(stepped, means)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_over_relaxed_fit_never_raises_the_inertia_and_ends_on_its_means(chelsea, dtype):
    """Every pass's inertia is at most the last one's (rounding aside: 1e-6 relative in
    float32, 1e-12 in float64); at strict convergence the centres are the weighted means
    of their labels and each label is the nearest centre (numpy float64); the result
    is bitwise the same on 1, 2 and 3 threads, and not Lloyd's."""
    from emcore.image import distinct_colors
    colors, counts, _ = distinct_colors(chelsea.reshape(-1, 3), z_order=True)
    X, w = colors.astype(dtype), counts.astype(np.float64)

    def fit(n_threads, relax=1.8):
        log = []
        m = KMeans(32, tol=0, random_state=5, over_relaxation=relax, n_threads=n_threads,
                   callback=lambda n, inertia: log.append(inertia)).fit(X, sample_weight=w)
        return m, np.array(log)

    relaxed, log = fit(1)
    slack = 1e-6 if dtype == np.float32 else 1e-12
    assert len(log) > 5 and (np.diff(log) <= slack * log[:-1]).all()
    Xd, centers = X.astype(np.float64), relaxed.cluster_centers_.astype(np.float64)
    for j in range(32):
        members = relaxed.labels_ == j
        np.testing.assert_allclose(centers[j], np.average(Xd[members], axis=0,
                                                         weights=w[members]), rtol=1e-5)
    d = ((Xd[:, None, :] - centers[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d[np.arange(len(X)), relaxed.labels_], d.min(1), rtol=1e-5)
    for n_threads in (2, 3):
        other, other_log = fit(n_threads)
        np.testing.assert_array_equal(other.cluster_centers_, relaxed.cluster_centers_)
        np.testing.assert_array_equal(other.labels_, relaxed.labels_)
        np.testing.assert_array_equal(other_log, log)
    lloyd, lloyd_log = fit(1, relax=1.0)
    assert len(lloyd_log) != len(log) or not np.array_equal(lloyd_log, log)


def test_the_image_pipeline_fits_over_relaxed_kmeans(chelsea):
    """segment_image's k-means is KMeans(over_relaxation=IMAGE_OVER_RELAXATION) on the
    distinct colours weighted by their counts; a caller's value is kept."""
    from emcore import segment_image
    from emcore.pipeline import IMAGE_OVER_RELAXATION
    assert 1 < IMAGE_OVER_RELAXATION < 2
    assert segment_image(chelsea, 8).model.over_relaxation == IMAGE_OVER_RELAXATION
    assert segment_image(chelsea, 8, over_relaxation=1.0).model.over_relaxation == 1.0
