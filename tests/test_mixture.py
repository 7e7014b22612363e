"""GaussianMixture against scikit-learn from the same start, and EM's guarantees."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.mixture import GaussianMixture as SkGM

from emcore import GaussianMixture, load

COV_TYPES = ["spherical", "diag", "full"]


@pytest.fixture(scope="module")
def pixels(chelsea):
    return chelsea.reshape(-1, 3)[::4].astype(np.float64)


def sklearn_start(X, k, cov_type, seed=0):
    """A start both libraries take: scikit-learn's own fit after one iteration."""
    sk = SkGM(k, covariance_type=cov_type, max_iter=1, random_state=seed).fit(X)
    return dict(weights_init=sk.weights_, means_init=sk.means_, precisions_init=sk.precisions_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_same_parameters_as_scikit_learn_float64(pixels, cov_type):
    start = sklearn_start(pixels, 5, cov_type)
    kw = dict(covariance_type=cov_type, tol=0, max_iter=8, **start)
    sk = SkGM(5, **kw).fit(pixels)
    em = GaussianMixture(5, **kw).fit(pixels)
    np.testing.assert_allclose(em.weights_, sk.weights_, rtol=1e-6)
    np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-6)
    np.testing.assert_allclose(em.covariances_, sk.covariances_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(em.precisions_, sk.precisions_, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=1e-9)
    assert em.n_iter_ == sk.n_iter_ == 8
    np.testing.assert_allclose(em.score_samples(pixels), sk.score_samples(pixels), rtol=1e-6)
    np.testing.assert_allclose(em.predict_proba(pixels), sk.predict_proba(pixels), atol=1e-6)
    np.testing.assert_array_equal(em.predict(pixels), sk.predict(pixels))
    np.testing.assert_allclose(em.bic(pixels), sk.bic(pixels), rtol=1e-9)
    np.testing.assert_allclose(em.aic(pixels), sk.aic(pixels), rtol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_same_parameters_as_scikit_learn_float32(pixels, cov_type):
    X = pixels.astype(np.float32)
    start = sklearn_start(pixels, 4, cov_type, seed=1)
    kw = dict(covariance_type=cov_type, tol=0, max_iter=6, **start)
    sk = SkGM(4, **kw).fit(X)
    em = GaussianMixture(4, **kw).fit(X)
    np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-4)
    np.testing.assert_allclose(em.covariances_, sk.covariances_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(em.weights_, sk.weights_, rtol=1e-4)
    np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=1e-5)


def test_converges_like_scikit_learn_with_tolerance(pixels):
    start = sklearn_start(pixels, 3, "full")
    sk = SkGM(3, tol=1e-3, **start).fit(pixels)
    em = GaussianMixture(3, tol=1e-3, **start).fit(pixels)
    assert em.converged_ and sk.converged_ and em.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-6)


@pytest.mark.parametrize("cov_type", COV_TYPES)
@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random_from_data"])
def test_every_init_gives_a_monotone_finite_fit(pixels, cov_type, init):
    em = GaussianMixture(6, covariance_type=cov_type, init_params=init, max_iter=25,
                         tol=0, random_state=3).fit(pixels)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.isfinite(getattr(em, name)).all(), name
    lb = em.lower_bounds_
    assert len(lb) == 25 and lb[-1] == em.lower_bound_
    assert (np.diff(lb) >= -1e-9 * np.abs(lb[1:])).all(), np.diff(lb).min()
    np.testing.assert_allclose(em.weights_.sum(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_kmeans_start_is_a_k_means_optimum_as_good_as_scikit_learns(seed):
    """init_params='kmeans' runs over-relaxed k-means (mixture.INIT_OVER_RELAXATION) to
    k-means' tolerance: its start labels every sample with its nearest centre, and
    on blobs its squared error is at most that of scikit-learn's k-means (lower on
    seeds 2 and 5, where it settles a few border points better)."""
    from sklearn.cluster import KMeans as SkKMeans
    from sklearn.datasets import make_blobs
    X, _ = make_blobs(3000, 2, centers=5, cluster_std=0.6, random_state=seed)
    em = GaussianMixture(5, random_state=seed)
    labels, centres = em._initial_labels(X, np.ones(len(X)), np.random.RandomState(seed), 1)
    sq = ((X[:, None, :] - np.asarray(centres, dtype=np.float64)[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, sq.argmin(axis=1))
    inertia = sq[np.arange(len(X)), labels].sum()
    assert inertia <= SkKMeans(5, n_init=1, random_state=seed).fit(X).inertia_ * (1 + 1e-9)


def test_integer_sample_weight_equals_repeated_rows(pixels):
    X = pixels[:3000]
    counts = np.random.RandomState(0).randint(0, 4, len(X))
    start = sklearn_start(np.repeat(X, counts, axis=0), 3, "full")
    a = GaussianMixture(3, tol=0, max_iter=10, **start).fit(X, sample_weight=counts)
    b = GaussianMixture(3, tol=0, max_iter=10, **start).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-9)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(a.bic(X, sample_weight=counts), b.bic(np.repeat(X, counts, axis=0)),
                               rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_weights_equal_unit_weights_bitwise(pixels, dtype):
    """Unweighted fits pass the kernels one shared weight instead of an N-long array."""
    X = pixels.astype(dtype)
    kw = dict(covariance_type="diag", init_params="k-means++", max_iter=4, tol=0,
              random_state=0)
    a = GaussianMixture(5, **kw).fit(X)
    b = GaussianMixture(5, **kw).fit(X, sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_)


def test_unique_colours_with_counts_equal_every_pixel(chelsea):
    from emcore import unique_colors
    X = chelsea.reshape(-1, 3)
    colors, counts, _ = unique_colors(X)
    start = sklearn_start(X[::9].astype(np.float64), 4, "full")
    a = GaussianMixture(4, tol=0, max_iter=5, **start).fit(X)
    b = GaussianMixture(4, tol=0, max_iter=5, **start).fit(colors, sample_weight=counts)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-6)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-6)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-7)


@pytest.mark.parametrize("cov_type", ["diag", "full"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_identical_for_any_thread_count(cov_type, dtype):
    rng = np.random.RandomState(4)
    X = (rng.randn(200_000, 3) * 30 + rng.randint(0, 4, (200_000, 1)) * 50).astype(dtype)
    fits = [GaussianMixture(4, covariance_type=cov_type, max_iter=5, tol=0, random_state=0,
                            n_threads=t).fit(X) for t in (1, 2, 3, 7)]
    for f in fits[1:]:
        np.testing.assert_array_equal(f.means_, fits[0].means_)
        np.testing.assert_array_equal(f.covariances_, fits[0].covariances_)
        np.testing.assert_array_equal(f.lower_bounds_, fits[0].lower_bounds_)


def test_same_random_state_repeats_exactly(pixels):
    a = GaussianMixture(5, random_state=7, max_iter=5).fit(pixels)
    b = GaussianMixture(5, random_state=7, max_iter=5).fit(pixels)
    np.testing.assert_array_equal(a.means_, b.means_)


def test_empty_component_is_reseeded_not_nan(pixels):
    means = np.array([[100.0, 100, 100], [1e6, 1e6, 1e6]])  # nothing near the second
    em = GaussianMixture(2, covariance_type="diag", means_init=means, max_iter=5, tol=0)
    em.fit(pixels)
    assert np.isfinite(em.means_).all() and np.isfinite(em.covariances_).all()
    assert (em.weights_ > 0).all()
    assert np.abs(em.means_).max() <= 255  # the far component came back to the data


def test_n_init_keeps_the_best(pixels):
    # the first of n_init runs is the single run with the same seed, so the best
    # of three can only be as good or better; the three runs really differ
    kw = dict(max_iter=10, init_params="random_from_data")
    single = GaussianMixture(5, random_state=0, **kw).fit(pixels)
    seen = []
    best = GaussianMixture(5, random_state=0, n_init=3,
                           callback=lambda it, lb: seen.append(lb) if it == 10 else None,
                           **kw).fit(pixels)
    assert seen[0] == single.lower_bounds_[-1] and len(set(seen)) == 3
    assert best.lower_bound_ == max(seen) >= single.lower_bound_


def test_warm_start_continues(pixels):
    em = GaussianMixture(3, max_iter=3, tol=0, random_state=0, warm_start=True).fit(pixels)
    first = em.lower_bound_
    em.fit(pixels)
    assert em.lower_bounds_[0] >= first - 1e-9


def test_save_and_load_predict_identically(tmp_path, pixels):
    em = GaussianMixture(4, covariance_type="diag", random_state=0, max_iter=5).fit(pixels)
    em.save(tmp_path / "model.npz")
    back = load(tmp_path / "model.npz")
    assert isinstance(back, GaussianMixture) and back.covariance_type == "diag"
    np.testing.assert_array_equal(back.predict(pixels), em.predict(pixels))
    np.testing.assert_array_equal(back.score_samples(pixels), em.score_samples(pixels))


def test_params_follow_scikit_learn_conventions():
    em = GaussianMixture(3, covariance_type="diag", n_threads=1)
    assert em.get_params()["covariance_type"] == "diag"
    cloned = clone(em)
    assert cloned.get_params() == em.get_params() and cloned is not em
    em.set_params(n_components=4)
    assert em.n_components == 4
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        em.set_params(bogus=1)


def test_sample_draws_from_the_mixture(pixels):
    em = GaussianMixture(3, random_state=0, max_iter=20).fit(pixels)
    X, y = em.sample(60_000)
    assert X.shape == (60_000, 3) and y.shape == (60_000,)
    for k in range(3):
        np.testing.assert_allclose(X[y == k].mean(axis=0), em.means_[k],
                                   atol=5 * np.sqrt(em.covariances_[k].diagonal().max()
                                                    / (y == k).sum()))
    np.testing.assert_allclose(np.bincount(y) / 60_000, em.weights_, atol=0.01)


def test_max_iter_zero_only_initialises(pixels):
    em = GaussianMixture(3, max_iter=0, random_state=0).fit(pixels)
    assert em.n_iter_ == 0 and not em.converged_ and len(em.lower_bounds_) == 0
    np.testing.assert_allclose(em.lower_bound_, em.score(pixels), rtol=1e-12)


X_OK = np.random.RandomState(0).rand(50, 3)


@pytest.mark.parametrize("kwargs, X, fit_kw, error, message", [
    (dict(n_components=0), X_OK, {}, ValueError, "n_components"),
    (dict(n_components=2.5), X_OK, {}, TypeError, "n_components"),
    (dict(n_components=51), X_OK, {}, ValueError, "more than the 50 samples"),
    (dict(covariance_type="bogus"), X_OK, {}, ValueError, "covariance_type"),
    (dict(init_params="magic"), X_OK, {}, ValueError, "init_params"),
    (dict(max_iter=-1), X_OK, {}, ValueError, "max_iter"),
    (dict(tol=-1.0), X_OK, {}, ValueError, "tol"),
    (dict(reg_covar=np.nan), X_OK, {}, ValueError, "reg_covar"),
    (dict(n_threads=0), X_OK, {}, ValueError, "n_threads"),
    (dict(means_init=np.zeros((3, 2))), X_OK, {}, ValueError, "means_init"),
    (dict(weights_init=[0.5, 0.6]), X_OK, {}, ValueError, "weights_init"),
    (dict(precisions_init=np.ones(3)), X_OK, {}, ValueError, "precisions_init"),
    ({}, np.full((5, 3), np.nan), {}, ValueError, "NaN"),
    ({}, np.zeros((0, 3)), {}, ValueError, "0 sample"),
    ({}, np.zeros(5), {}, ValueError, "Expected 2D array.*Reshape your data"),
    ({}, np.zeros((5, 3), dtype=complex), {}, ValueError, "Complex data not supported"),
    ({}, np.array([[{"a": 1}, 0, 0]] * 5, dtype=object), {}, TypeError, "real numbers"),
    ({}, X_OK, dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
    ({}, X_OK, dict(sample_weight=-np.ones(50)), ValueError, "non-negative"),
    ({}, X_OK, dict(sample_weight=np.zeros(50)), ValueError, "positive sum"),
])
def test_bad_input(kwargs, X, fit_kw, error, message):
    with pytest.raises(error, match=message):
        GaussianMixture(**{"n_components": 2, **kwargs}).fit(X, **fit_kw)


def test_predict_before_fit_and_with_wrong_width():
    with pytest.raises(ValueError, match="not fitted"):
        GaussianMixture(2).predict(X_OK)
    em = GaussianMixture(2, random_state=0).fit(X_OK)
    with pytest.raises(ValueError, match="2 features"):
        em.predict(X_OK[:, :2])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_features", [1, 2, 5])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_other_feature_counts_match_scikit_learn(n_features, cov_type):
    # RGB has a fused kernel path; every other width takes the generic one
    rng = np.random.RandomState(n_features)
    centres = rng.uniform(0, 100, (3, n_features))
    X = np.vstack([c + rng.randn(4000, n_features) * rng.uniform(2, 9, n_features)
                   for c in centres])
    start = sklearn_start(X, 3, cov_type)
    kw = dict(covariance_type=cov_type, tol=0, max_iter=6, **start)
    sk = SkGM(3, **kw).fit(X)
    em = GaussianMixture(3, **kw).fit(X)
    np.testing.assert_allclose(em.means_, sk.means_, rtol=1e-6)
    np.testing.assert_allclose(em.covariances_, sk.covariances_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(em.lower_bound_, sk.lower_bound_, rtol=1e-9)


@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_float32_unique_colours_equal_every_pixel_after_20_iterations(astronaut, cov_type):
    """The image pipeline fits float32: the distinct colours weighted by their counts
    stay the every-pixel model to 1e-4, a near-empty component included."""
    from emcore import unique_colors
    X = astronaut.reshape(-1, 3)
    colors, counts, _ = unique_colors(X)
    rng = np.random.default_rng(0)
    k = 12
    means = colors[rng.choice(len(colors), k, replace=False)].astype(np.float64)
    means[0] = [250, 5, 250]  # far from every pixel: a component that nearly empties
    prec = {"diag": np.full((k, 3), 0.01), "full": np.repeat(np.eye(3)[None] * 0.01, k, 0)}
    start = dict(means_init=means, weights_init=np.full(k, 1 / k),
                 precisions_init=prec[cov_type])
    kw = dict(covariance_type=cov_type, tol=0, max_iter=20, **start)
    a = GaussianMixture(k, **kw).fit(X.astype(np.float32))
    b = GaussianMixture(k, **kw).fit(colors.astype(np.float32), sample_weight=counts)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=1e-4)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-4, atol=1e-3)
