"""Cross-cutting guarantees: properties over random inputs, the GIL, concurrent use,
thread-count independence and degenerate data."""
import os
import threading
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from PIL import Image as PILImage
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from emcore import EM, GaussianMixture, KMeans, Kernel, compute_densities, quantize
from emcore.mixture import EMPTY_FRACTION

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def small_image_and_k(draw):
    n = draw(st.integers(2, 300))
    pixels = draw(arrays(np.uint8, (n, 3), elements=st.integers(0, 255)))
    distinct = len(np.unique(pixels, axis=0))
    k = draw(st.integers(1, min(distinct, 6)))
    return pixels, k


class _RecordingReseeds(GaussianMixture):
    """Records, per iteration, whether an empty component was re-seeded."""

    def _reseed_empty(self, source, weights, *args):
        self.__dict__.setdefault("reseeded", []).append(bool((weights < EMPTY_FRACTION).any()))
        return super()._reseed_empty(source, weights, *args)


@SETTINGS
@given(small_image_and_k(), st.sampled_from(["spherical", "diag", "tied", "full"]))
def test_em_fits_are_finite_and_monotone(data, cov_type):
    pixels, k = data
    X = pixels.astype(np.float64)
    em = _RecordingReseeds(k, covariance_type=cov_type, max_iter=15, tol=0,
                           random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.isfinite(getattr(em, name)).all(), name
    lb = em.lower_bounds_
    assert np.isfinite(lb).all()
    # EM never lowers the likelihood; re-seeding an empty component (not an EM step)
    # may, so the step after a re-seed is not compared
    em_steps = ~np.asarray(em.reseeded[:len(lb) - 1], dtype=bool)
    drop = np.diff(lb) < -1e-7 * np.maximum(1, np.abs(lb[1:]))
    assert not (drop & em_steps).any(), (lb, em.reseeded)
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


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 2, 3), (3000, 3000, 3)],
                         ids=["1px", "2px", "9MP"])
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


# ---- round two: tampered files, absurd parameters, fork, overflow (issue 12) ----

def _in_subprocess(code, timeout=120):
    """Run code in a fresh interpreter (a crash or hang must not take pytest with it)."""
    import subprocess
    import sys
    import textwrap
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=os.path.dirname(__file__))


def _tamper(path, out, **changes):
    data = dict(np.load(path))
    data.update(changes)
    with open(out, "wb") as f:
        np.savez(f, **data)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, chelsea):
    folder = tmp_path_factory.mktemp("models")
    X = chelsea.reshape(-1, 3)[::7]
    GaussianMixture(3, covariance_type="full", max_iter=5, random_state=0).fit(X).save(
        folder / "gm.npz")
    KMeans(3, random_state=0).fit(X).save(folder / "km.npz")
    return folder


@pytest.mark.parametrize("name, changes, message", [
    ("gm", {"fit:means_": np.zeros((40, 3))}, "means_ must be"),
    ("gm", {"fit:precisions_cholesky_": np.zeros((1, 3, 3))}, "precisions_cholesky_ must be"),
    ("gm", {"fit:means_": np.full((3, 3), np.nan)}, "NaN"),
    ("gm", {"fit:covariances_": -np.ones((3, 3, 3))}, "positive definite"),
    ("gm", {"fit:n_features_in_": np.array(7)}, "must be"),
    ("km", {"fit:cluster_centers_": np.zeros((3, 40))}, "cluster_centers_ must be"),
    ("km", {"fit:cluster_centers_": np.full((3, 3), np.inf)}, "infinite"),
])
def test_tampered_model_files_are_refused(model_files, chelsea, tmp_path, name, changes,
                                          message):
    bad = tmp_path / "bad.npz"
    _tamper(model_files / f"{name}.npz", bad, **changes)
    proc = _in_subprocess(f"""
        import numpy as np
        from emcore import load, compute_densities
        try:
            m = load({str(bad)!r})
        except ValueError as err:
            print("refused:", err)
        else:
            x = np.zeros((1000, 3))
            m.predict(x)
            print("used")
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused:") and message in proc.stdout


def test_model_file_kinds_that_are_not_models(model_files, tmp_path):
    from emcore import load
    (tmp_path / "empty.npz").write_bytes(b"")
    whole = (model_files / "gm.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    np.save(tmp_path / "plain.npy", np.zeros(3))
    for name in ("empty.npz", "cut.npz", "plain.npy"):
        with pytest.raises((OSError, ValueError), match="model"):
            load(tmp_path / name)


def test_a_huge_member_is_refused_before_it_is_read(model_files, tmp_path):
    import time
    import zipfile
    from emcore import load
    bad = tmp_path / "huge.npz"
    _tamper(model_files / "gm.npz", bad)
    with zipfile.ZipFile(bad, "a", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("fit:lower_bounds_x.npy", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(512):  # 512 MiB of zeros, a few hundred KB on disk
                f.write(chunk)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="more than a model"):
        load(bad)
    assert time.perf_counter() - start < 5


def test_cli_densities_refuses_a_nan_model(model_files, tmp_path, chelsea):
    bad = tmp_path / "nan.npz"
    _tamper(model_files / "gm.npz", bad, **{"fit:weights_": np.full(3, np.nan)})
    from emcore.cli import main
    img = tmp_path / "c.png"
    PILImage.fromarray(chelsea).save(img)
    assert main(["densities", str(img), "--model", str(bad), "-o", str(tmp_path / "d.npy")]) == 2
    assert not (tmp_path / "d.npy").exists()


@pytest.mark.parametrize("n_threads", [50000, 100000, 2**31])
def test_absurd_thread_counts_are_a_clear_error(chelsea, n_threads):
    with pytest.raises(ValueError, match="n_threads"):
        KMeans(2, n_threads=n_threads).fit(chelsea.reshape(-1, 3)[:500])


def test_kernel_door_refuses_inconsistent_arrays():
    proc = _in_subprocess("""
        import numpy as np
        from emcore import _kernels
        rng = np.random.RandomState(0)
        refused = 0
        for trial in range(300):
            n, d, k = rng.randint(1, 50), rng.randint(1, 5), rng.randint(1, 6)
            dt = rng.choice([np.float32, np.float64])
            def arr(*shape, dtype=dt):
                shape = tuple(max(0, s + rng.choice([0, 0, 0, -1, 1])) for s in shape)
                return np.zeros(shape, dtype=rng.choice([dtype, dtype, np.float32, np.float64]))
            full = bool(rng.randint(2))
            X = arr(n, d)
            args = [arr(k, d), arr(k, d * d if full else d), arr(k), full]
            try:
                which = rng.randint(8)
                if which == 7:  # labels anywhere in -1 .. k: outside 0 .. k - 1 refused
                    labels = arr(n, dtype=np.int32)
                    labels[:] = rng.randint(-1, k + 1, len(labels)) if rng.randint(2) else 0
                    _kernels.labelled_sums(X, arr(n, dtype=np.float64), labels, k,
                                           int(rng.choice([1, 7, 2048])), 2)
                elif which == 0:
                    _kernels.log_mixture_density(X, *args, False, arr(n, dtype=np.float64), 1)
                elif which == 1:
                    _kernels.most_likely_component(X, *args, arr(n, dtype=np.int32), 1)
                elif which == 2:
                    s = 1 + d + (d * (d + 1) // 2 if full else d)
                    _kernels.em_pass(X, arr(n, dtype=np.float64), *args, 2048,
                                     arr(1, k, s, dtype=np.float64), arr(1, dtype=np.float64), 2)
                elif which == 3:
                    _kernels.lloyd_pass(X, arr(n, dtype=np.float64), arr(k, d),
                                        arr(n, dtype=np.int32), 2048,
                                        arr(1, k, 1 + d, dtype=np.float64),
                                        arr(1, dtype=np.float64), 2,
                                        arr(_kernels.reach_slots(1, 2048), dtype=np.float64)
                                        if rng.randint(2) else None,
                                        arr(k, d) if rng.randint(2) else None)
                elif which == 6:
                    _kernels.feature_range(X, 2)
                elif which == 5:  # checked once, then pass after pass
                    passes = _kernels.LloydPasses(X, arr(n, dtype=np.float64), 2048, 1, 2)
                    for _ in range(3):
                        passes(arr(k, d), arr(n, dtype=np.int32) if rng.randint(2) else None)
                else:  # responsibilities q, a hard assignment's labels, or both
                    s = 1 + d + (d * (d + 1) // 2 if full else d)
                    use = rng.randint(3)
                    _kernels.posterior_sums(X, arr(n, k) if use != 1 else None,
                                            arr(n, dtype=np.int32) if use != 0 else None,
                                            arr(n, dtype=np.float64), arr(k, d), full, 2048,
                                            arr(1, k, s, dtype=np.float64), 2)
            except ValueError:
                refused += 1
        print("ok", refused)
        # 2**25 + 5 components: the kernels' int scratch sizes would overflow
        K = 2**25 + 5
        try:
            _kernels.log_mixture_density(np.zeros((10, 3), np.float32),
                                         np.zeros((K, 3), np.float32),
                                         np.ones((K, 3), np.float32),
                                         np.zeros(K, np.float32), False, False,
                                         np.empty(10), 1)
        except ValueError as err:
            print("big refused:", err)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok") and int(proc.stdout.split()[1]) > 100
    assert "big refused: mixture" in proc.stdout


def test_colour_spread_door_refuses_what_would_reach_past_its_arrays(chelsea):
    """spread_rgb8 indexes per-colour values by each pixel's colour code: values of
    the wrong length, a colour the bitmap does not mark, or arrays of the wrong type
    or size are refused before (or instead of) any out-of-range read."""
    from emcore import _kernels
    pixels = np.ascontiguousarray(chelsea.reshape(-1, 3))
    colors, present = _kernels.distinct_rgb8(pixels, 2)
    values, out = np.arange(len(colors), dtype=np.float64), np.empty(len(pixels))
    _kernels.spread_rgb8(pixels, present, values, out, 2)
    np.testing.assert_array_equal(colors[out.astype(np.int64)], pixels)
    # labels in place of an inverse (emcore.image.rgb8_labels), in Z-order codes
    from emcore.image import rgb8_colors
    z_colors, _, z_present = rgb8_colors(pixels)
    index = np.empty(len(pixels), np.int32)
    _kernels.spread_rgb8(pixels, z_present, np.arange(len(z_colors), dtype=np.int32), index,
                         2, z_order=True)
    np.testing.assert_array_equal(z_colors[index], pixels)
    small = np.empty(len(pixels), np.uint8)
    _kernels.spread_rgb8(pixels, z_present, (np.arange(len(z_colors)) % 256).astype(np.uint8),
                         small, 2, z_order=True)
    np.testing.assert_array_equal(small, index % 256)
    fewer = present.copy()
    fewer[np.flatnonzero(fewer)[-1]] = 0  # the last marked word: its colours unmarked
    cases = [
        ((pixels, present, values[:-1], out), "values has"),
        ((pixels, present, np.arange(len(colors) + 1.0), out), "values has"),
        ((pixels, fewer, values[:np.unpackbits(fewer.view(np.uint8)).sum()], out),
         "pixels have colours that present does not mark"),
        ((pixels, present[:-1], values, out), "present must have shape"),
        ((pixels, present.astype(np.int64), values, out), "present must be uint64"),
        ((pixels[:, :2].copy(), present, values, out), r"pixels must be \(N, 3\)"),
        ((pixels.astype(np.int16), present, values, out), "pixels must be uint8"),
        ((pixels, present, values, out[:-1]), "out must have shape"),
        ((pixels, present, values, out.astype(np.float32)), "out must be float64"),
        ((pixels, present, values.astype(np.int64), out), "values must be a uint8, int32"),
        ((pixels, present, values.astype(np.int32), out), "out must be int32"),
    ]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            _kernels.spread_rgb8(*args, 1)
    with pytest.raises(ValueError, match="n_threads"):
        _kernels.distinct_rgb8(pixels, 0)


def test_a_forked_child_fits_after_a_threaded_parent(chelsea):
    proc = _in_subprocess("""
        import multiprocessing as mp
        import numpy as np
        from emcore import GaussianMixture
        X = np.random.RandomState(0).rand(20000, 3)
        GaussianMixture(3, n_threads=2, random_state=0).fit(X)
        def child(q):
            q.put(float(GaussianMixture(3, n_threads=2, random_state=0).fit(X).lower_bound_))
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        print(q.get(timeout=60))
        p.join(30)
        print(p.exitcode)
    """, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[1] == "0" and np.isfinite(float(proc.stdout.split()[0]))


@pytest.mark.parametrize("dtype, scale", [(np.float32, 3e19), (np.float64, 1e155)])
def test_kmeans_overflow_is_an_error_not_inf(dtype, scale):
    X = (np.random.RandomState(0).rand(3000, 3) * scale).astype(dtype)
    with pytest.raises(ValueError, match="overflow"):
        KMeans(2, random_state=0).fit(X)


@pytest.mark.parametrize("dtype, scale", [(np.int64, 9e18), (np.uint64, 1.8e19)])
def test_integers_beyond_16_bits_are_the_float_image_of_their_values(dtype, scale):
    # they have no full intensity to scale by: fitted as float64 (they overflowed in
    # float32 before, where float64 holds their squared distances)
    image = (np.random.RandomState(0).rand(16, 16, 3) * scale).astype(dtype)
    got, palette, labels = quantize(image, 4)
    expected = quantize(image.astype(np.float64), 4)
    assert got.dtype == np.float64
    for a, b in zip((got, palette, labels), expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype, scale", [(np.float32, 3e19), (np.float64, 1e155)])
@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_image_overflow_names_the_image_not_an_internal_array(dtype, scale, method):
    image = (np.random.RandomState(0).rand(16, 16, 3) * scale).astype(dtype)
    with pytest.raises(ValueError, match="overflow") as err:
        quantize(image, 4, method=method)
    assert "the image's values" in str(err.value) and "X" not in str(err.value)
    rescaled = (image / scale * 1e3).astype(dtype)
    quantize(rescaled, 4, method=method)  # the same image, rescaled, is fitted


def test_a_folder_given_as_an_image_is_refused_in_plain_words(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder, not an image"):
        EM(str(tmp_path), 3)


@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e30), (np.float64, 1e155)])
@pytest.mark.parametrize("init", ["random", "random_from_data", "kmeans"])
def test_mixture_overflow_is_reported_as_overflow_not_degenerate_data(dtype, scale, init):
    X = (np.random.RandomState(0).rand(300, 3) * scale).astype(dtype)
    with pytest.raises(ValueError, match="overflow") as err:
        GaussianMixture(3, init_params=init, random_state=0).fit(X)
    assert "degenerate" not in str(err.value)


@pytest.mark.parametrize("estimator", [KMeans(2), GaussianMixture(2)])
def test_weights_summing_past_float64_are_refused_in_plain_words(estimator):
    X = np.random.RandomState(0).rand(500, 3)
    with pytest.raises(ValueError, match="sample_weight sums past float64"):
        estimator.fit(X, sample_weight=np.full(500, 1e306))
    estimator.fit(X, sample_weight=np.full(500, 1e303))  # the same weights, rescaled


def test_mixture_weights_are_scale_invariant(chelsea):
    X = chelsea.reshape(-1, 3)[::13].astype(np.float64)
    ones = GaussianMixture(3, covariance_type="diag", random_state=0, max_iter=20).fit(X)
    tiny = GaussianMixture(3, covariance_type="diag", random_state=0, max_iter=20).fit(
        X, sample_weight=np.full(len(X), 1e-20))
    np.testing.assert_allclose(tiny.means_, ones.means_, rtol=1e-9)
    np.testing.assert_allclose(tiny.lower_bound_, ones.lower_bound_, rtol=1e-9)


def test_kmeans_with_fewer_distinct_points_than_clusters():
    from emcore.exceptions import ConvergenceWarning
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]), 20, axis=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        km = KMeans(5, random_state=0, max_iter=300).fit(X)
    assert np.isfinite(km.cluster_centers_).all() and km.n_iter_ < 300
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert not any(issubclass(w.category, RuntimeWarning) for w in caught)
    assert km.inertia_ == 0


def test_clear_errors_for_warm_start_and_singular_precisions(chelsea):
    X = chelsea.reshape(-1, 3)[::17].astype(np.float64)
    gm = GaussianMixture(2, warm_start=True, max_iter=3).fit(X)
    gm.set_params(covariance_type="diag")
    with pytest.raises(ValueError, match="warm_start"):
        gm.fit(X)
    with pytest.raises(ValueError, match="symmetric, positive-definite"):  # singular
        GaussianMixture(2, precisions_init=np.zeros((2, 3, 3)),
                        means_init=X[:2], weights_init=[0.5, 0.5]).fit(X)


# ----------------------------------------------------------- round three (#30)
@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(c, 0.3, (60, 3)) for c in (0.0, 3.0, 6.0)])


@pytest.mark.parametrize("make,change", [
    (lambda: GaussianMixture(3, random_state=0), dict(n_components=4)),
    (lambda: GaussianMixture(3, covariance_type="diag", random_state=0),
     dict(covariance_type="spherical")),
    (lambda: GaussianMixture(3, covariance_type="diag", random_state=0),  # K = D: same shape
     dict(covariance_type="tied")),
    (lambda: GaussianMixture(3, covariance_type="full", random_state=0),
     dict(covariance_type="tied")),
    (lambda: KMeans(3, random_state=0), dict(n_clusters=2)),
])
def test_parameters_changed_after_fit_are_refused_not_misread(tmp_path, blobs, make, change):
    model = make().fit(blobs)
    expected = model.predict(blobs)
    before = {name: getattr(model, name) for name in change}
    model.set_params(**change)
    name = next(iter(change))
    for use in (lambda: model.predict(blobs), lambda: model.save(tmp_path / "m.npz")):
        with pytest.raises(ValueError, match=f"{name}=.* was set after fit"):
            use()
    assert not (tmp_path / "m.npz").exists()
    model.set_params(**before)
    np.testing.assert_array_equal(model.predict(blobs), expected)
    model.save(tmp_path / "m.npz")
    from emcore import load
    loaded = load(tmp_path / "m.npz")
    loaded.set_params(**change)
    with pytest.raises(ValueError, match="was set after fit"):
        loaded.predict(blobs)


def test_model_files_hold_nothing_of_the_machine(tmp_path, blobs):
    from emcore import load
    KMeans(3, n_threads=2, random_state=0).fit(blobs).save(tmp_path / "k.npz")
    with np.load(tmp_path / "k.npz") as members:
        assert not any("n_threads" in name for name in members.files)
    assert load(tmp_path / "k.npz").n_threads is None


def test_float_images_in_unit_range_are_written_scaled(tmp_path):
    from emcore import save_image
    rng = np.random.default_rng(1)
    unit = rng.uniform(size=(6, 7, 3))
    save_image(unit, tmp_path / "u.png")
    np.testing.assert_array_equal(np.asarray(PILImage.open(tmp_path / "u.png")),
                                  np.rint(unit * 255).astype(np.uint8))
    levels = unit * 200 + 20  # beyond 1: the 0-255 scale
    save_image(levels, tmp_path / "l.png")
    np.testing.assert_array_equal(np.asarray(PILImage.open(tmp_path / "l.png")),
                                  np.rint(levels).astype(np.uint8))


@pytest.mark.parametrize("ext", ["gif", "webp", "bmp"])
def test_sixteen_bit_grey_goes_to_eight_bit_formats_at_eight_bits(tmp_path, ext):
    from emcore import save_image
    grey = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    with pytest.warns(UserWarning, match="8 bits"):
        save_image(grey, tmp_path / f"g.{ext}")
    written = np.asarray(PILImage.open(tmp_path / f"g.{ext}").convert("L")).astype(int)
    expected = np.rint(grey / 257.0)
    np.testing.assert_array_equal(written, expected)  # WebP too: written lossless
    assert len(np.unique(written)) > 32


def test_changing_em_options_drops_the_cached_picture():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (24, 24, 3)).astype(np.uint8)
    em = EM(image, 4).fit(5)
    plain = em.segmented().copy()
    em.dither = 1.0
    assert (em.segmented() != plain).any()
    em.dither = 0.0
    np.testing.assert_array_equal(em.segmented(), plain)
    em.repaint = "component"
    assert (em.segmented() != plain).any()


@pytest.mark.parametrize("call", [
    lambda img: EM(img, 2, unique_colors="no"),
    lambda img: quantize(img, 2, unique_colors="no"),
    lambda img: compute_densities(img, [Kernel([0, 0, 0], [1, 1, 1], 1.0)], log="no"),
    lambda img: compute_densities(img, [Kernel([0, 0, 0], [1, 1, 1], 1.0)], normalize=1),
])
def test_flags_must_be_booleans(call):
    with pytest.raises(TypeError, match="must be True or False"):
        call(np.zeros((4, 4, 3), dtype=np.uint8))


def test_summaries_refuse_what_would_give_nan_or_divide_by_zero():
    from emcore import summaries
    params = (np.zeros((1, 3)), np.ones((1, 3)), np.ones(1), "diag")
    bad = np.ones((4, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        summaries.em_sums(bad, *params)
    with pytest.raises(ValueError, match="NaN"):
        summaries.lloyd_sums(bad, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="block_size"):
        summaries.em_sums(np.ones((4, 3)), *params, block_size=0)
    with pytest.raises(TypeError, match="X must be"):
        summaries.lloyd_sums([[1.0, 2.0, 3.0]], np.zeros((1, 3)))


def test_reg_covar_too_large_for_float32_names_reg_covar(blobs):
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, reg_covar=1e300).fit(blobs.astype(np.float32))
    GaussianMixture(2, reg_covar=1e300, max_iter=2).fit(blobs)  # float64 holds it


@pytest.mark.parametrize("labels,match", [
    (np.full((4, 5), 2), "0..1"), (np.full((4, 5), -1), "0..1"),
    (np.zeros((5, 4), dtype=int), "shape"), (np.zeros((4, 5)), "integers"),
])
def test_labels_are_checked_against_the_palette_and_the_image(tmp_path, labels, match):
    from emcore import save_image
    from emcore.pipeline import ImageSamples
    image = np.zeros((4, 5, 3), dtype=np.uint8)
    palette = np.array([[0, 0, 0], [255, 255, 255]], dtype=np.uint8)
    with pytest.raises((ValueError, TypeError), match=match):
        save_image(image, tmp_path / "x.png", labels=labels, palette=palette)
    assert not (tmp_path / "x.png").exists()
    with pytest.raises((ValueError, TypeError), match=match):
        ImageSamples(image).paint(labels, palette)


def test_an_image_too_wide_for_its_format_is_refused_naming_the_format(tmp_path):
    from emcore import save_image
    wide = np.zeros((1, 70_000), dtype=np.uint8)
    with pytest.raises(ValueError, match="GIF holds at most 65,535"):
        save_image(wide, tmp_path / "w.gif")
    assert not (tmp_path / "w.gif").exists()
    save_image(wide, tmp_path / "w.png")  # PNG holds it


def test_summaries_and_changed_fitted_arrays_are_refused_in_public_words():
    from emcore import summaries
    X = np.random.RandomState(0).rand(300, 3)
    gm = GaussianMixture(3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="precision Cholesky factors must have shape"):
        summaries.em_sums(X, gm.means_, np.ones((3, 3)), gm.weights_, "full")
    with pytest.raises(ValueError, match="covariance_type one of"):
        summaries.em_sums(X, gm.means_, gm.precisions_cholesky_, gm.weights_, "fuller")
    with pytest.raises(ValueError, match=r"stats must have shape \(K, 1 \+ D\)"):
        summaries.cluster_centers(np.ones((3, 2)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="stats must be"):
        summaries.m_step(np.ones((3, 2)), np.zeros(3), 1e-10, "full", 1e-6)
    with pytest.raises(ValueError, match="must have 10 columns"):
        summaries.m_step(np.ones((3, 9)), np.zeros((3, 3)), 1e-10, "full", 1e-6)
    gm.means_ = gm.means_[:, :2]
    with pytest.raises(ValueError, match=r"means_ has shape \(3, 2\)"):
        gm.predict(X)
    km = KMeans(3, random_state=0).fit(X)
    km.cluster_centers_ = np.ones((3, 4))
    with pytest.raises(ValueError, match="cluster_centers_ has shape"):
        km.predict(X)
