"""compute_densities against a textbook float64 formula and scipy.stats."""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emcore import Kernel, _kernels, compute_densities, densities
from emcore.densities import SLAB_PIXELS


def textbook_log_terms(X, kernels, normalize=True):
    """log(w_k N(x; mu_k, Sigma_k)) for each kernel: matrix inverse and determinant."""
    X = np.asarray(X, dtype=np.float64)
    terms = []
    for mean, cov, weight in kernels:
        mean = np.asarray(mean, dtype=np.float64).ravel()
        cov = np.asarray(cov, dtype=np.float64)
        if cov.ndim < 2 or cov.shape[0] != cov.shape[1] or cov.shape == (1, 1) and mean.size > 1:
            cov = np.diag(cov.ravel())
        d = mean.size
        diff = X - mean
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        log_norm = -0.5 * np.log(np.linalg.det(cov))
        if normalize:
            log_norm -= 0.5 * d * np.log(2 * np.pi)
        terms.append(np.log(weight) + log_norm - 0.5 * maha)
    return np.stack(terms, axis=1)


def textbook_density(X, kernels, normalize=True):
    return np.exp(textbook_log_terms(X, kernels, normalize)).sum(axis=1)


def photo_kernels(photo, k, full, seed=0):
    """Kernels fitted loosely to a photo: means at random pixels, covariances from data."""
    rng = np.random.RandomState(seed)
    X = photo.reshape(-1, 3).astype(np.float64)
    idx = rng.choice(len(X), k, replace=False)
    base = np.cov(X[rng.choice(len(X), 2000)].T)
    kernels = []
    for j, i in enumerate(idx):
        scale = 0.05 + 0.2 * rng.rand()
        cov = base * scale if full else np.diag(base) * scale
        kernels.append(Kernel(X[i], cov, rng.rand() + 0.1))
    return kernels


@pytest.mark.parametrize("full", [False, True], ids=["diag", "full"])
def test_photo_matches_textbook(coffee, full):
    kernels = photo_kernels(coffee, 6, full)
    got = compute_densities(coffee, kernels)
    assert got.shape == coffee.shape[:2] and got.dtype == np.float64
    ref = textbook_density(coffee.reshape(-1, 3), kernels).reshape(coffee.shape[:2])
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("full", [False, True], ids=["diag", "full"])
def test_log_matches_logsumexp_where_density_underflows(coffee, full):
    kernels = photo_kernels(coffee, 4, full, seed=1)
    # a very narrow kernel far from most pixels: densities underflow to 0
    kernels = [Kernel(k.mean, np.asarray(k.covariance) * 1e-3, k.weight) for k in kernels]
    got = compute_densities(coffee, kernels, log=True)
    ref = logsumexp(textbook_log_terms(coffee.reshape(-1, 3), kernels), axis=1)
    assert np.isfinite(got).all()
    assert (compute_densities(coffee, kernels) == 0).any()  # the plain density underflows
    np.testing.assert_allclose(got.ravel(), ref, rtol=1e-10, atol=1e-9)


def test_normalize_false_drops_only_the_2pi_constant(chelsea):
    kernels = photo_kernels(chelsea, 3, True, seed=2)
    got = compute_densities(chelsea, kernels, normalize=False)
    ref = textbook_density(chelsea.reshape(-1, 3), kernels, normalize=False)
    np.testing.assert_allclose(got.ravel(), ref, rtol=1e-10)


def test_scipy_multivariate_normal_oracle(astronaut):
    kernels = photo_kernels(astronaut, 5, True, seed=3)
    X = astronaut.reshape(-1, 3).astype(np.float64)
    ref = sum(w * multivariate_normal(m, c).pdf(X) for m, c, w in kernels)
    np.testing.assert_allclose(compute_densities(astronaut, kernels).ravel(), ref, rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("readonly", [False, True])
def test_dtypes_and_layouts(chelsea, dtype, order, readonly):
    img = np.array(chelsea[::3, ::3], dtype=dtype, order=order)
    if dtype == np.uint16:
        img = img * np.uint16(257)
    img.flags.writeable = not readonly
    kernels = [Kernel(np.array([120.0, 100, 80]) * (257 if dtype == np.uint16 else 1),
                      np.array([900.0, 700, 500]) * (257 ** 2 if dtype == np.uint16 else 1), 1.0)]
    ref = textbook_density(img.reshape(-1, 3), kernels).reshape(img.shape[:2])
    np.testing.assert_allclose(compute_densities(img, kernels), ref, rtol=1e-10)


def test_float32_computation_is_close(coffee):
    kernels = photo_kernels(coffee, 8, True, seed=4)
    got = compute_densities(coffee, kernels, log=True, dtype=np.float32)
    ref = logsumexp(textbook_log_terms(coffee.reshape(-1, 3), kernels), axis=1)
    np.testing.assert_allclose(got.ravel(), ref, rtol=1e-4, atol=1e-3)


def test_question_shapes_row_and_column_means_and_row_variances():
    # the numpy question's layout: mean (1, 3), diagonal covariance (1, 3)
    rng = np.random.RandomState(5)
    img = rng.randint(0, 256, (7, 9, 3)).astype(np.uint8)
    row = [Kernel(np.array([[100.0, 120, 140]]), np.array([[400.0, 500, 600]]), 0.7),
           Kernel(np.array([[30.0], [40], [50]]), np.array([[200.0, 250, 300]]), 0.3)]
    flat = [(m.ravel(), c.ravel(), w) for m, c, w in row]
    ref = textbook_density(img.reshape(-1, 3), flat).reshape(7, 9)
    np.testing.assert_allclose(compute_densities(img, row), ref, rtol=1e-12)
    np.testing.assert_allclose(compute_densities(img, flat), ref, rtol=1e-12)


def test_mixed_diagonal_and_full_kernels():
    rng = np.random.RandomState(6)
    X = rng.uniform(0, 255, (500, 3))
    kernels = [([10, 20, 30], [100, 200, 300], 0.5),
               ([200, 100, 50], [[400, 30, 0], [30, 300, 20], [0, 20, 200]], 0.5)]
    np.testing.assert_allclose(compute_densities(X, kernels), textbook_density(X, kernels),
                               rtol=1e-12)


@pytest.mark.parametrize("shape", [(40, 30), (40, 30, 1), (1200,), (1200, 1)])
def test_single_channel(shape):
    rng = np.random.RandomState(7)
    img = rng.randint(0, 256, shape).astype(np.uint8)
    kernels = [Kernel([50.0], [300.0], 0.4), Kernel([[180.0]], [[900.0]], 0.6)]
    got = compute_densities(img, kernels)
    expected_shape = shape[:-1] if shape[-1] == 1 else shape
    assert got.shape == expected_shape
    ref = textbook_density(img.reshape(-1, 1), kernels)
    np.testing.assert_allclose(got.ravel(), ref, rtol=1e-12)


def test_fitted_scikit_learn_mixture_is_accepted(chelsea):
    from sklearn.mixture import GaussianMixture as SkGM
    X = chelsea.reshape(-1, 3)[::7].astype(np.float64)
    for cov_type in ("spherical", "diag", "tied", "full"):
        gm = SkGM(4, covariance_type=cov_type, random_state=0, max_iter=20).fit(X)
        np.testing.assert_allclose(compute_densities(X, gm, log=True), gm.score_samples(X),
                                   rtol=1e-10, atol=1e-10)


def test_fitted_mixture_with_a_lower_triangular_factor(chelsea):
    from sklearn.mixture import GaussianMixture as SkGM
    X = chelsea.reshape(-1, 3)[::7].astype(np.float64)
    gm = SkGM(3, random_state=0, max_iter=20).fit(X)
    expected = gm.score_samples(X)
    # the same precisions, factored as L L^T (lower) instead of U U^T
    gm.precisions_cholesky_ = np.linalg.cholesky(gm.precisions_)
    np.testing.assert_allclose(gm.score_samples(X), expected, rtol=1e-10)
    np.testing.assert_allclose(compute_densities(X, gm, log=True), expected, rtol=1e-10)


def test_more_pixels_than_one_slab_and_thread_counts():
    rng = np.random.RandomState(8)
    X = rng.randint(0, 256, (SLAB_PIXELS + 12345, 3)).astype(np.uint8)
    kernels = [Kernel(rng.uniform(0, 255, 3), np.diag(rng.uniform(100, 900, 3)), 1.0 / 3)
               for _ in range(3)]
    results = [compute_densities(X, kernels, log=True, n_threads=t) for t in (1, 2, 3)]
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    idx = rng.choice(len(X), 5000)
    ref = logsumexp(textbook_log_terms(X[idx], kernels), axis=1)
    np.testing.assert_allclose(results[0][idx], ref, rtol=1e-12)
    assert np.isfinite(results[0]).all()


GOOD = [Kernel([0.0, 0, 0], [1.0, 1, 1], 1.0)]
IMG = np.zeros((4, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize("image, kernels, message", [
    (np.full((4, 4, 3), np.nan), GOOD, "NaN"),
    (np.full((4, 4, 3), np.inf), GOOD, "infinite"),
    (np.zeros((0, 4, 3)), GOOD, "empty"),
    (np.zeros((4, 4, 4, 3)), GOOD, "shape"),
    (np.zeros((4, 4, 2)), GOOD, "shape"),
    (np.zeros((4, 4, 3), dtype=complex), GOOD, "Complex data not supported"),
    (np.array([["a", "b", "c"]]), GOOD, "real numbers"),
    (IMG, [], "empty"),
    (IMG, [Kernel([0.0, 0], [1.0, 1], 1.0)], "shape"),
    (IMG, GOOD + [Kernel([0.0, 0], [1.0, 1], 1.0)], "kernel 1 mean"),
    (IMG, [Kernel([0.0, 0, 0], [1.0, 0, 1], 1.0)], "zero or negative variance"),
    (IMG, [Kernel([0.0, 0, 0], [1.0, -1, 1], 1.0)], "zero or negative variance"),
    (IMG, [Kernel([0.0, 0, 0], [[1, 0.5, 0], [0, 1, 0], [0, 0, 1]], 1.0)], "not symmetric"),
    (IMG, [Kernel([0.0, 0, 0], [[1, 2, 0], [2, 1, 0], [0, 0, 1]], 1.0)], "not positive definite"),
    (IMG, [Kernel([0.0, 0, 0], [1.0, 1, 1], -0.5)], "non-negative"),
    (IMG, [Kernel([0.0, 0, 0], [1.0, 1, 1], 0.0)], "all zero"),
    (IMG, [Kernel([np.nan, 0, 0], [1.0, 1, 1], 1.0)], "NaN"),
    (IMG, [Kernel([0.0, 0, 0], [1.0, 1, 1], np.inf)], "finite"),
    (IMG, [Kernel([0.0, 0, 0], [1.0, 1], 1.0)], "covariance has shape"),
    (IMG, [(1.0, 2.0)], "triple"),
    (IMG, "kernels", "sequence"),
])
def test_bad_input_names_the_problem(image, kernels, message):
    with pytest.raises((ValueError, TypeError), match=message):
        compute_densities(image, kernels)


@pytest.mark.parametrize("n_threads, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError)])
def test_bad_thread_count(n_threads, error):
    with pytest.raises(error, match="n_threads"):
        compute_densities(IMG, GOOD, n_threads=n_threads)


def test_float32_overflow_is_reported():
    with pytest.raises(ValueError, match="too large for float32"):
        compute_densities(np.full((2, 2, 3), 1e39), GOOD, dtype=np.float32)


def test_memory_is_output_plus_one_slab():
    import tracemalloc
    rng = np.random.RandomState(9)
    img = rng.randint(0, 256, (3 * SLAB_PIXELS // 1000, 1000, 3)).astype(np.uint8)
    kernels = [Kernel(rng.uniform(0, 255, 3), rng.uniform(100, 900, 3), 1.0) for _ in range(32)]
    tracemalloc.start()
    try:
        out = compute_densities(img, kernels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one float64 slab (24 MiB) and its finiteness mask fit in the 32 MiB budget
    assert peak <= out.nbytes + (32 << 20), (peak, out.nbytes)


def test_float32_output(chelsea):
    kernels = [Kernel([120.0, 80, 60], [900.0, 700, 800], 0.7),
               Kernel([30.0, 40, 20], [[300, 20, 0], [20, 200, 0], [0, 0, 100]], 0.3)]
    full = compute_densities(chelsea, kernels, log=True)
    small = compute_densities(chelsea, kernels, log=True, out_dtype=np.float32)
    assert small.dtype == np.float32 and small.shape == full.shape
    np.testing.assert_array_equal(small, full.astype(np.float32))
    with pytest.raises(ValueError, match="out_dtype"):
        compute_densities(chelsea, kernels, out_dtype=np.int32)


@pytest.fixture
def spread_calls(monkeypatch):
    """How many times compute_densities spread per-colour values back to pixels."""
    calls = []
    real = _kernels.spread_rgb8

    def counted(*args):
        calls.append(args[0].shape[0])
        return real(*args)
    monkeypatch.setattr(_kernels, "spread_rgb8", counted)
    return calls


@pytest.mark.parametrize("full", [False, True], ids=["diag", "full"])
@pytest.mark.parametrize("log", [False, True])
def test_repeated_colours_are_scored_once_with_every_pixels_values(
        coffee, full, log, spread_calls):
    """8-bit RGB: each distinct colour scored once and spread back; the very values of
    scoring every pixel (float input, which is always scored pixel by pixel)."""
    kernels = photo_kernels(coffee, 32, full)
    got = compute_densities(coffee, kernels, log=log)
    assert spread_calls == [coffee.shape[0] * coffee.shape[1]]
    every_pixel = compute_densities(coffee.astype(np.float64), kernels, log=log)
    assert len(spread_calls) == 1
    np.testing.assert_array_equal(got, every_pixel)
    X = coffee.reshape(-1, 3)[::97]
    ref = (logsumexp(textbook_log_terms(X, kernels), axis=1) if log
           else textbook_density(X, kernels))
    np.testing.assert_allclose(got.reshape(-1)[::97], ref, rtol=1e-10)


def test_repeated_colours_for_any_thread_count_and_output_type(chelsea, spread_calls):
    kernels = photo_kernels(chelsea, 24, True, seed=3)
    outs = [compute_densities(chelsea, kernels, n_threads=t) for t in (1, 2, 3)]
    assert len(spread_calls) == 3
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    small = compute_densities(chelsea, kernels, out_dtype=np.float32, dtype=np.float32)
    direct = compute_densities(chelsea.astype(np.float32), kernels, out_dtype=np.float32,
                               dtype=np.float32)
    assert small.dtype == np.float32
    np.testing.assert_array_equal(small, direct)


def test_grey_levels_are_scored_once(spread_calls):
    rng = np.random.RandomState(4)
    img = rng.randint(0, 256, (300, 200)).astype(np.uint8)
    kernels = [Kernel([m], [v], w) for m, v, w in zip(rng.uniform(0, 255, 16),
                                                       rng.uniform(20, 900, 16), rng.rand(16))]
    levels, _ = densities._repeated_colors(img.reshape(-1, 1), len(kernels), 2)
    np.testing.assert_array_equal(levels.ravel(), np.arange(256))
    got = compute_densities(img, kernels, n_threads=2)
    np.testing.assert_array_equal(got, compute_densities(img.astype(np.float64), kernels))
    np.testing.assert_allclose(got.ravel(), textbook_density(img.reshape(-1, 1), kernels),
                               rtol=1e-12)
    assert spread_calls == []  # 256 levels are a table lookup, not the RGB bitmap


def test_noise_with_a_colour_per_pixel_is_scored_pixel_by_pixel(spread_calls):
    """Spreading back costs more than it saves when nearly every colour is distinct."""
    rng = np.random.RandomState(5)
    noise = rng.randint(0, 256, (1000, 1000, 3)).astype(np.uint8)
    kernels = photo_kernels(noise, 32, False)
    got = compute_densities(noise, kernels, n_threads=1)
    assert spread_calls == []
    idx = rng.choice(noise.shape[0] * noise.shape[1], 2000)
    np.testing.assert_allclose(got.reshape(-1)[idx],
                               textbook_density(noise.reshape(-1, 3)[idx], kernels), rtol=1e-10)


def test_the_cost_model_weighs_kernels_threads_and_repeats():
    """_repeated_colors' choice (the values are the same either way, see above)."""
    photo = np.repeat(np.arange(64, dtype=np.uint8), 3 * 4096).reshape(-1, 3)  # 64 colours
    assert densities._repeated_colors(photo, 32, 2) is not None
    assert densities._repeated_colors(photo, 2, 1) is None  # two kernels: scoring is cheap
    assert densities._repeated_colors(photo.astype(np.float32), 32, 1) is None
    assert densities._repeated_colors(photo[:, :2], 32, 1) is None  # not grey, not RGB
    colors, _ = densities._repeated_colors(photo, 32, 1)
    np.testing.assert_array_equal(colors, np.unique(photo, axis=0))


def test_the_docstring_example_holds():
    import doctest
    assert doctest.testmod(densities).failed == 0


def test_a_model_fitted_in_another_space_scores_pixels_in_that_space(tmp_path, coffee):
    """The image pipeline records the space it fitted in (kept in model files): scoring
    an image with the model converts its pixels the same way (was: sRGB pixels scored
    against OKLab Gaussians, all densities 0)."""
    from emcore import GaussianMixture, load, segment_image
    from emcore.colorspace import samples_to_oklab
    from emcore.transparency import composite_coordinates
    crop = coffee[100:160, 200:280]
    model = segment_image(crop, 6, method="gmm", color_space="oklab").model
    model.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.input_space_ == "oklab"
    lab = samples_to_oklab(crop.reshape(-1, 3), 255.0, dtype=np.float64)
    plain = GaussianMixture(6)
    for name in ("means_", "weights_", "covariances_", "precisions_cholesky_"):
        setattr(plain, name, getattr(loaded, name))
    plain.covariance_type, plain.n_features_in_ = loaded.covariance_type, 3
    expected = compute_densities(lab.reshape(crop.shape), plain, log=True)
    np.testing.assert_allclose(compute_densities(crop, loaded, log=True), expected,
                               rtol=1e-6, atol=1e-6)
    assert np.median(compute_densities(crop, loaded)) > 1  # OKLab units: densities >> 1

    alpha = np.full(crop.shape[:2], 255, dtype=np.uint8)
    alpha[:, :10] = 128
    rgba = np.dstack([crop, alpha])
    rgba_model = segment_image(rgba, 6, method="gmm").model
    assert rgba_model.input_space_ == "composite"
    coords = composite_coordinates(rgba.reshape(-1, 3 + 1)[:, :3], alpha.reshape(-1), 255.0)
    plain.means_, plain.weights_ = rgba_model.means_, rgba_model.weights_
    plain.covariances_ = rgba_model.covariances_
    plain.precisions_cholesky_ = rgba_model.precisions_cholesky_
    plain.covariance_type, plain.n_features_in_ = rgba_model.covariance_type, 4
    np.testing.assert_allclose(compute_densities(rgba, rgba_model, log=True),
                               compute_densities(coords.reshape(rgba.shape), plain, log=True),
                               rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="fitted in oklab"):
        compute_densities(crop.astype(np.float64), loaded)
    # integers of another type: the 8-bit pixels they are (int64 was scaled by 9.2e18)
    np.testing.assert_array_equal(compute_densities(rgba.astype(np.int64), rgba_model),
                                  compute_densities(rgba, rgba_model))
    with pytest.raises(ValueError, match="outside 0-65535"):
        compute_densities(crop.astype(np.int32) - 1, loaded)


def test_the_em_class_records_its_space_as_the_pipeline_does(coffee):
    from emcore import EM, segment_image
    crop = coffee[100:160, 200:280]
    em = EM(crop, 6, color_space="oklab").fit(30)
    assert em.model_.input_space_ == "oklab"
    pipeline = segment_image(crop, 6, method="gmm", color_space="oklab").model
    np.testing.assert_array_equal(compute_densities(crop, em.model_),
                                  compute_densities(crop, pipeline))
