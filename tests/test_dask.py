"""emcore/_dask.py and emcore/summaries.py: fits and scores of chunked Dask arrays.

On a dask.distributed LocalCluster (2 worker processes, 1 thread each): the fits
equal the in-memory fits from the same start, bitwise where chunks start at
multiples of the block size and to 1e-9 for any other chunking; per-sample
outputs are lazy and equal the in-memory ones; re-seeding does not depend on
the chunking; the client never holds the samples.
"""
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from emcore import (GaussianMixture, KMeans, compute_densities, segment_image,  # noqa: E402
                    summaries)
from emcore.summaries import block_size_for  # noqa: E402


@pytest.fixture(autouse=True)
def chunked_fits_even_when_small(monkeypatch):
    """These tests check the chunked path on small photos: fit them chunked."""
    from emcore import _dask
    monkeypatch.setattr(_dask, "IN_MEMORY_BELOW", 0)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def pixels(chelsea):
    return chelsea.reshape(-1, 3).astype(np.float64)


def _start(X, k, cov_type):
    d = X.shape[1]
    prec = {"spherical": np.full(k, 1 / 400.0), "diag": np.full((k, d), 1 / 400.0),
            "tied": np.eye(d) / 400.0,
            "full": np.repeat(np.eye(d)[None] / 400.0, k, axis=0)}[cov_type]
    means = X[np.random.RandomState(0).choice(len(X), k, replace=False)]
    return dict(means_init=means, weights_init=np.full(k, 1 / k), precisions_init=prec)


@pytest.mark.parametrize("cov_type", ["spherical", "diag", "tied", "full"])
def test_mixture_on_chunks_equals_the_in_memory_fit(client, pixels, cov_type):
    start = _start(pixels, 5, cov_type)
    kw = dict(covariance_type=cov_type, max_iter=15, tol=0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = GaussianMixture(5, **kw).fit(pixels)
        aligned = GaussianMixture(5, **kw).fit(
            da.from_array(pixels, chunks=(7 * block_size_for(len(pixels)), 3)))
        ragged = GaussianMixture(5, **kw).fit(da.from_array(pixels, chunks=(10_007, 3)))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "lower_bounds_"):
        np.testing.assert_array_equal(getattr(aligned, name), getattr(memory, name), name)
        np.testing.assert_allclose(getattr(ragged, name), getattr(memory, name), rtol=1e-9,
                                   atol=1e-9, err_msg=name)


@pytest.mark.parametrize("over_relaxation", [1.0, 1.8])
def test_kmeans_on_chunks_equals_the_in_memory_fit(client, pixels, over_relaxation):
    init = pixels[np.random.RandomState(1).choice(len(pixels), 8, replace=False)]
    memory = KMeans(8, init=init, over_relaxation=over_relaxation).fit(pixels)
    for chunks in (3 * block_size_for(len(pixels)), 9_999):
        X = da.from_array(pixels, chunks=(chunks, 3))
        km = KMeans(8, init=init, over_relaxation=over_relaxation).fit(X)
        np.testing.assert_allclose(km.cluster_centers_, memory.cluster_centers_, rtol=1e-12)
        np.testing.assert_allclose(km.inertia_, memory.inertia_, rtol=1e-12)
        assert km.n_iter_ == memory.n_iter_
        assert isinstance(km.labels_, da.Array)
        np.testing.assert_array_equal(km.labels_.compute(), memory.labels_)


def test_per_sample_outputs_are_lazy_and_equal(client, pixels, chelsea):
    X = da.from_array(pixels, chunks=(20_000, 3))
    gm = GaussianMixture(4, covariance_type="full", random_state=0).fit(pixels)
    km = KMeans(4, random_state=0).fit(pixels)
    for lazy, eager in ((gm.predict(X), gm.predict(pixels)),
                        (gm.predict_proba(X), gm.predict_proba(pixels)),
                        (gm.score_samples(X), gm.score_samples(pixels)),
                        (km.predict(X), km.predict(pixels)),
                        (km.transform(X), km.transform(pixels))):
        assert isinstance(lazy, da.Array) and lazy.shape == eager.shape
        np.testing.assert_array_equal(lazy.compute(), eager)
    image = da.from_array(chelsea, chunks=(100, 150, 3))
    densities = compute_densities(image, gm)
    assert isinstance(densities, da.Array) and densities.shape == chelsea.shape[:2]
    np.testing.assert_array_equal(densities.compute(), compute_densities(chelsea, gm))
    small = compute_densities(image, gm, log=True, out_dtype=np.float32)
    assert small.dtype == np.float32
    np.testing.assert_array_equal(small.compute(), compute_densities(chelsea, gm, log=True,
                                                                     out_dtype=np.float32))


def test_reseeding_does_not_depend_on_the_chunking(client):
    # a large uniform background: two components start far from every pixel
    rng = np.random.RandomState(3)
    colors = rng.randint(0, 256, (40, 3)).astype(np.float64)
    X = np.vstack([np.full((30_000, 3), 90.0), np.repeat(colors, rng.randint(5, 200, 40),
                                                        axis=0)])
    X = X[rng.permutation(len(X))]
    start = dict(means_init=np.vstack([colors[:4], [[-9e3] * 3, [9e3] * 3]]),
                 weights_init=np.full(6, 1 / 6), precisions_init=np.full((6, 3), 0.01))
    kw = dict(covariance_type="diag", max_iter=8, tol=0, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        memory = GaussianMixture(6, **kw).fit(X)
        chunked = GaussianMixture(6, **kw).fit(da.from_array(X, chunks=(4_321, 3)))
        km_memory = KMeans(6, init=start["means_init"]).fit(X)
        km_chunked = KMeans(6, init=start["means_init"]).fit(da.from_array(X, chunks=(777, 3)))
    assert (np.abs(memory.means_) < 256).all()  # the far components were re-seeded
    np.testing.assert_allclose(chunked.means_, memory.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(chunked.weights_, memory.weights_, rtol=1e-9)
    np.testing.assert_allclose(km_chunked.cluster_centers_, km_memory.cluster_centers_,
                               rtol=1e-12)


def test_default_start_is_the_same_for_any_chunking(client):
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(c, 3, (100_000, 3)) for c in (20, 80, 160, 220)])
    X = X[rng.permutation(len(X))].astype(np.float32)  # more rows than START_SAMPLE
    a = GaussianMixture(4, covariance_type="diag", random_state=0).fit(
        da.from_array(X, chunks=(50_000, 3)))
    b = GaussianMixture(4, covariance_type="diag", random_state=0).fit(
        da.from_array(X, chunks=(77_777, 3)))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-6)
    assert a.means_.dtype == np.float32
    np.testing.assert_allclose(np.sort(a.means_[:, 0]), [20, 80, 160, 220], atol=0.5)


def test_the_client_never_holds_the_samples(client):
    """A 24 MP image made on the workers: the client's peak memory grows by far less
    than the 288 MB the samples take."""
    X = da.random.RandomState(0).uniform(0, 255, size=(24_000_000, 3), chunks=(2_000_000, 3))
    X = X.astype(np.float32)
    init = np.linspace(10, 240, 6)[:, None].repeat(3, axis=1)

    def peak_kib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak
    except OSError:
        pytest.skip("cannot reset the peak memory counter here")
    before = peak_kib()
    km = KMeans(6, init=init, max_iter=3).fit(X)
    grown_mib = (peak_kib() - before) / 1024
    assert np.isfinite(km.cluster_centers_).all()
    assert grown_mib < 0.25 * X.nbytes / 2**20, grown_mib


def test_summaries_in_a_plain_loop_equal_the_fit(pixels):
    """The engine-neutral module: pieces summarised one by one, merged in order."""
    start = _start(pixels, 3, "diag")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = GaussianMixture(3, covariance_type="diag", max_iter=1, tol=0,
                                 **start).fit(pixels)
    bs = block_size_for(len(pixels))
    pieces = [pixels[i:i + 5 * bs] for i in range(0, len(pixels), 5 * bs)]
    means = start["means_init"]
    prec_chol = np.sqrt(start["precisions_init"])
    parts = [summaries.em_sums(p, means, prec_chol, start["weights_init"], "diag",
                               block_size=bs) for p in pieces]
    stats, loglik = summaries.merge(parts)
    weights, new_means, cov = summaries.m_step(
        stats, summaries.em_centre(means, pixels.dtype), np.finfo(np.float64).eps, "diag",
        1e-6)
    np.testing.assert_array_equal(new_means, fitted.means_)
    np.testing.assert_array_equal(cov, fitted.covariances_)
    assert loglik / len(pixels) == fitted.lower_bound_


def test_images_on_dask_equal_in_memory(client, chelsea, tmp_path):
    """unique_colors, quantize, segment_image and the EM seed API on a chunked image."""
    from emcore import EM, quantize, save_new, unique_colors
    image = da.from_array(chelsea, chunks=(70, 200, 3))
    colors, counts, inverse = unique_colors(image.rechunk({1: -1}).reshape(-1, 3))
    ref = unique_colors(chelsea.reshape(-1, 3))
    np.testing.assert_array_equal(colors, ref[0])
    np.testing.assert_array_equal(counts, ref[1])
    np.testing.assert_array_equal(inverse.compute(), ref[2])
    for method in ("kmeans", "gmm"):
        lazy_image, palette, labels = quantize(image, 12, method=method)
        eager_image, eager_palette, eager_labels = quantize(chelsea, 12, method=method)
        assert isinstance(lazy_image, da.Array) and isinstance(labels, da.Array)
        np.testing.assert_array_equal(palette, eager_palette)
        np.testing.assert_array_equal(labels.compute(), eager_labels)
        np.testing.assert_array_equal(lazy_image.compute(), eager_image)
    gray = chelsea[:, :, 1]
    np.testing.assert_array_equal(quantize(da.from_array(gray, chunks=(64, 64)), 6)[0].compute(),
                                  quantize(gray, 6)[0])
    em = EM(image, 6).fit(10)
    save_new(em, tmp_path / "em.png")
    np.testing.assert_array_equal(np.asarray(em.segmented()), EM(chelsea, 6).fit(10).segmented())
    with pytest.raises(ValueError, match="Dask image"):
        quantize(image, 6, dither=0.5)


@pytest.mark.parametrize("layout", ["rgba8", "la8", "rgba16", "opaque", "clear"])
def test_images_with_alpha_on_dask_equal_in_memory(client, chelsea, tmp_path, layout):
    """Colour and alpha fitted together, the transparent pixels on entry 0, as in memory."""
    from emcore import quantize, segment_image
    rng = np.random.RandomState(4)
    photo = chelsea[:90, :120].astype(np.uint16)
    alpha = rng.choice([0, 0, 90, 255, 255, 255], photo.shape[:2]).astype(np.uint16)
    alpha = {"opaque": np.full_like(alpha, 255), "clear": np.zeros_like(alpha)}.get(layout,
                                                                                   alpha)
    image = np.dstack([photo[:, :, :1] if layout == "la8" else photo, alpha])
    image = (image * 257).astype(np.uint16) if layout == "rgba16" else image.astype(np.uint8)
    for k in (1, 8):
        eager = quantize(image, k)
        for chunks in ((30, 120, -1), (17, 50, -1)):
            lazy = quantize(da.from_array(image, chunks=chunks), k)
            assert isinstance(lazy[0], da.Array)
            np.testing.assert_array_equal(lazy[1], eager[1])  # the palette
            np.testing.assert_array_equal(lazy[2].compute(), eager[2])
            np.testing.assert_array_equal(lazy[0].compute(), eager[0])
    segment_image(image, 8).save(tmp_path / "eager.png")
    segment_image(da.from_array(image, chunks=(30, 120, -1)), 8).save(tmp_path / "lazy.png")
    assert (tmp_path / "lazy.png").read_bytes() == (tmp_path / "eager.png").read_bytes()


def test_dask_images_with_alpha_that_are_refused(client, chelsea):
    from emcore import quantize
    rgba = np.dstack([chelsea, np.full(chelsea.shape[:2], 255, np.uint8)])
    with pytest.raises(ValueError, match="integers"):
        quantize(da.from_array(rgba / 255.0, chunks=(100, -1, -1)), 4)
    with pytest.raises(ValueError, match="color_space"):
        quantize(da.from_array(rgba, chunks=(100, -1, -1)), 4, color_space="oklab")
    with pytest.raises(ValueError, match="1 to 4 channels"):
        quantize(da.from_array(np.dstack([rgba, rgba]), chunks=(100, -1, -1)), 4)
    with pytest.raises(TypeError, match="uint8 or uint16"):  # in memory: the depth they fit
        quantize(da.from_array(rgba.astype(np.int64), chunks=(100, -1, -1)), 4)


def test_small_dask_inputs_are_fitted_in_memory(client, pixels, monkeypatch, capsys):
    from emcore import _dask
    monkeypatch.setattr(_dask, "IN_MEMORY_BELOW", 1_000_000)
    init = pixels[:4]
    km = KMeans(4, init=init, verbose=1).fit(da.from_array(pixels, chunks=(10_007, 3)))
    assert "computed into memory" in capsys.readouterr().out
    assert isinstance(km.labels_, np.ndarray)  # the in-memory fit, exactly
    np.testing.assert_array_equal(km.cluster_centers_,
                                  KMeans(4, init=init).fit(pixels).cluster_centers_)


def test_a_worker_killed_mid_fit_is_survived(client, pixels):
    """A worker process is killed (SIGKILL) between two iterations: distributed
    recomputes its tasks elsewhere and the fit ends with the same centres."""
    import os
    import signal
    init = pixels[np.random.RandomState(2).choice(len(pixels), 6, replace=False)]
    X = da.from_array(pixels, chunks=(10_000, 3))
    killed = []

    def kill_one_worker(n_iter, inertia):
        if n_iter == 3:
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    chunked = KMeans(6, init=init, max_iter=12, tol=0, callback=kill_one_worker).fit(X)
    assert killed and chunked.n_iter_ > 3
    memory = KMeans(6, init=init, max_iter=12, tol=0).fit(pixels)
    np.testing.assert_allclose(chunked.cluster_centers_, memory.cluster_centers_, rtol=1e-12)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the other tests


def test_workers_with_another_kernel_build_are_reported(client, pixels, monkeypatch):
    from emcore import _kernels
    other = "baseline" if _kernels.SIMD != "baseline" else "avx2"
    monkeypatch.setattr(_kernels, "SIMD", other)  # this process pretends to differ
    with pytest.warns(RuntimeWarning, match="kernel build"):
        KMeans(3, init=pixels[:3]).fit(da.from_array(pixels, chunks=(50_000, 3)))


def test_a_chunk_that_weighs_nothing(client, pixels):
    """Only the whole data set needs a positive weight: a chunk of zero weights adds
    nothing and the fit equals the in-memory weighted fit."""
    w = np.ones(len(pixels))
    w[:20_000] = 0
    init = pixels[-4:]
    chunked = KMeans(4, init=init).fit(da.from_array(pixels, chunks=(20_000, 3)),
                                       sample_weight=da.from_array(w, chunks=20_000))
    memory = KMeans(4, init=init).fit(pixels, sample_weight=w)
    np.testing.assert_allclose(chunked.cluster_centers_, memory.cluster_centers_, rtol=1e-12)
    stats = summaries.lloyd_sums(pixels[:100], init, np.zeros(100)).stats
    assert (stats == 0).all()
    with pytest.raises(ValueError, match="non-negative"):
        summaries.lloyd_sums(pixels[:100], init, -np.ones(100))


@pytest.mark.parametrize("k", [3, 200])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_dask_image_with_nan_or_inf_gets_the_in_memory_error(chelsea, k, bad):
    """Refused in the image's words, for k above its distinct colours too (where no fit
    runs: a palette holding NaN came back)."""
    image = chelsea[:40, :40].astype(np.float64) / 255
    image[5, 5, 1] = bad
    for lazy in (False, True):
        with pytest.raises(ValueError, match="image contains (NaN|infinite) values"):
            segment_image(da.from_array(image, chunks=16) if lazy else image, k)


@pytest.mark.parametrize("bad, message", [("nan", "NaN"), ("inf", "infinite"),
                                          ("negative weight", "non-negative"),
                                          ("zero weights", "every weight is zero")])
def test_bad_chunks_get_the_in_memory_errors(client, pixels, bad, message):
    X = pixels.copy()
    w = np.ones(len(X))
    if bad in ("nan", "inf"):
        X[50_000, 1] = np.nan if bad == "nan" else np.inf
    elif bad == "negative weight":
        w[50_000] = -1
    else:
        w[:] = 0
    with pytest.raises(ValueError, match=message):
        KMeans(3, init=pixels[:3]).fit(da.from_array(X, chunks=(20_000, 3)),
                                      sample_weight=da.from_array(w, chunks=20_000))
    with pytest.raises(ValueError, match=message):  # the same words as in memory
        KMeans(3, init=pixels[:3]).fit(X, sample_weight=w)
