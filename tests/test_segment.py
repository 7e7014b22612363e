"""The seed's EM workflow, quantize, and image kinds."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from emcore import EM, GaussianMixture, quantize, save_new, unique_colors
from emcore.image import distinct_colors
from emcore.transparency import composite_coordinates

from _photos import DATA, segment_mean_palette


def test_seed_script_runs_unchanged(tmp_path):
    out = tmp_path / "new.png"
    script = textwrap.dedent(f"""
        from emcore import EM, save_new
        epochs = 30
        n_clusters = 8
        em = EM({str(DATA / 'chelsea.png')!r}, n_clusters)
        em.fit(epochs)
        save_new(em, {str(out)!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300,
                   cwd=Path(__file__).parent)  # not the repo root: its emcore/ is uncompiled
    written = PILImage.open(out)
    assert written.mode == "P" and written.size == (451, 300)  # an indexed PNG
    written = np.asarray(written.convert("RGB"))
    assert len(unique_colors(written.reshape(-1, 3))[0]) <= 8


def test_segmented_is_each_segments_mean_colour(chelsea, tmp_path):
    em = EM(chelsea, 6).fit(10)
    seg = em.segmented()
    assert seg.dtype == np.uint8 and seg.shape == chelsea.shape
    np.testing.assert_array_equal(em.labels(), em.model_.predict(chelsea.reshape(-1, 3))
                                  .reshape(chelsea.shape[:2]))
    np.testing.assert_array_equal(seg, segment_mean_palette(chelsea, em.labels(), 6)[em.labels()])
    save_new(em, tmp_path / "seg.png")
    written = PILImage.open(tmp_path / "seg.png")
    assert written.mode == "P"
    np.testing.assert_array_equal(np.asarray(written.convert("RGB")), seg)
    save_new(em, tmp_path / "seg-rgb.png", rgb=True)
    assert PILImage.open(tmp_path / "seg-rgb.png").mode == "RGB"
    np.testing.assert_array_equal(np.asarray(PILImage.open(tmp_path / "seg-rgb.png")), seg)


def test_repaint_component_paints_the_component_means(chelsea):
    em = EM(chelsea, 6, repaint="component").fit(10)
    expected = np.clip(np.rint(em.means_), 0, 255).astype(np.uint8)[em.labels()]
    np.testing.assert_array_equal(em.segmented(), expected)


@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_unique_colours_give_the_every_pixel_model(chelsea, cov_type):
    means = chelsea.reshape(-1, 3)[::5000][:5].astype(np.float64)
    precisions = {"diag": np.full((5, 3), 1 / 400.0),
                  "full": np.repeat(np.eye(3)[None] / 400.0, 5, axis=0)}[cov_type]
    kw = dict(covariance_type=cov_type, means_init=means, weights_init=np.full(5, 0.2),
              precisions_init=precisions, tol=0)
    fast = EM(chelsea, 5, **kw).fit(8)
    slow = EM(chelsea, 5, unique_colors=False, **kw).fit(8)
    np.testing.assert_allclose(fast.means_, slow.means_, rtol=1e-6)
    np.testing.assert_allclose(fast.covariances_, slow.covariances_, rtol=1e-6)
    np.testing.assert_allclose(fast.lower_bounds_, slow.lower_bounds_, rtol=1e-7)
    np.testing.assert_array_equal(fast.labels(), slow.labels())


def test_same_as_a_weighted_mixture_on_counts(chelsea):
    # the pipeline's samples: the distinct colours in Z-order (emcore/_codes.pxd)
    colors, counts, inverse = distinct_colors(chelsea.reshape(-1, 3), z_order=True)
    em = EM(chelsea, 4, random_state=3).fit(10)
    # the pipeline fits 8-bit colours in float32 (GaussianMixture itself, like
    # scikit-learn's, computes integer input in float64)
    gm = GaussianMixture(4, random_state=3, max_iter=10, covariance_type="spherical").fit(
        colors.astype(np.float32), sample_weight=counts)
    np.testing.assert_array_equal(em.means_, gm.means_)


def test_grayscale_rgba_sixteen_bit_fortran_readonly(chelsea):
    gray = np.asarray(PILImage.fromarray(chelsea).convert("L"))
    seg = EM(gray, 4).fit(10).segmented()
    assert seg.shape == gray.shape and seg.dtype == np.uint8
    assert len(np.unique(seg)) <= 4

    alpha = np.linspace(0, 255, chelsea.shape[0] * chelsea.shape[1]).astype(np.uint8)
    rgba = np.dstack([chelsea, alpha.reshape(chelsea.shape[:2])])
    em = EM(rgba, 4).fit(5)
    seg = em.segmented()
    assert seg.shape == rgba.shape and len(np.unique(seg.reshape(-1, 4), axis=0)) <= 4
    assert (seg[:, :, 3][rgba[:, :, 3] == 0] == 0).all()  # transparent stays transparent
    assert (seg[:, :, 3][rgba[:, :, 3] == 255] == 255).all()  # opaque stays opaque
    # colour and alpha are fitted together: 3 components on the visible pixels'
    # composite coordinates (the 4th entry is the transparent one)
    visible = rgba.reshape(-1, 4)[rgba.reshape(-1, 4)[:, 3] > 0]
    colors, counts, _ = distinct_colors(visible, z_order=True)  # the pipeline's order
    y = composite_coordinates(colors[:, :3], colors[:, 3], 255).astype(np.float32)
    gm = GaussianMixture(3, random_state=0, max_iter=5, covariance_type="spherical").fit(
        y, sample_weight=counts)
    np.testing.assert_allclose(em.means_, gm.means_, rtol=1e-5, atol=1e-3)

    deep = chelsea.astype(np.uint16) * 257
    em16 = EM(deep, 4).fit(5)
    assert em16.segmented().dtype == np.uint16
    np.testing.assert_allclose(em16.means_ / 257, EM(chelsea, 4).fit(5).means_, rtol=1e-3)

    fortran = np.asfortranarray(chelsea)
    readonly = chelsea.copy()
    readonly.flags.writeable = False
    ref = EM(chelsea, 4).fit(5).means_
    np.testing.assert_array_equal(EM(fortran, 4).fit(5).means_, ref)
    np.testing.assert_array_equal(EM(readonly, 4).fit(5).means_, ref)
    np.testing.assert_array_equal(EM(PILImage.fromarray(chelsea), 4).fit(5).means_, ref)


@pytest.mark.parametrize("colors, k", [(1, 1), (2, 2), (5, 5)])
def test_degenerate_images_fit_without_nan(colors, k):
    palette = np.array([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
                       dtype=np.uint8)[:colors]
    img = palette[np.arange(64 * 64) % colors].reshape(64, 64, 3)
    for method in ("gmm", "kmeans"):
        q, pal, labels = quantize(img, k, method=method)
        assert np.isfinite(pal).all()
        np.testing.assert_array_equal(q, img)  # every colour is its own cluster
    em = EM(img, k, covariance_type="full").fit(50)
    assert np.isfinite(em.covariances_).all() and np.isfinite(em.lower_bound_)


def test_quantize_beats_pillow_median_cut_psnr(coffee):
    def psnr(a, b):
        mse = ((a.astype(np.float64) - b) ** 2).mean()
        return 10 * np.log10(255 ** 2 / mse)
    q, palette, labels = quantize(coffee, 32)
    assert q.shape == coffee.shape and palette.shape == (32, 3) and labels.max() == 31
    pil = np.asarray(PILImage.fromarray(coffee).quantize(32, method=PILImage.Quantize.MEDIANCUT)
                     .convert("RGB"))
    assert psnr(coffee, q) > psnr(coffee, pil) + 1.0


@pytest.mark.parametrize("call, error, message", [
    (lambda img: EM(img, 0), ValueError, "n_clusters"),
    (lambda img: EM(img, 3.5), TypeError, "n_clusters"),
    (lambda img: EM(img, 2).fit(-1), ValueError, "epochs"),
    (lambda img: EM(img, 2, colour=1), TypeError, "unknown option"),
    (lambda img: EM(img, 2, covariance_type="bogus").fit(1), ValueError, "covariance_type"),
    (lambda img: EM(img[:, :, :2].astype(float) * np.nan, 2), ValueError, "NaN"),
    (lambda img: EM(np.zeros((0, 3, 3)), 2), ValueError, "empty"),
    (lambda img: EM(np.zeros((4, 4, 3, 2)), 2), ValueError, "shape"),
    (lambda img: EM("/nonexistent/photo.png", 2), FileNotFoundError, "no such file"),
    (lambda img: EM(img, 2).labels(), ValueError, "not fitted"),
    (lambda img: quantize(img, 2, method="median"), ValueError, "method"),
    (lambda img: quantize(img, 0), ValueError, "n_colors"),
])
def test_bad_input(chelsea, call, error, message):
    with pytest.raises(error, match=message):
        call(chelsea)
