"""Plots render to real image files without a display."""
import numpy as np
import pytest
from PIL import Image as PILImage

from emcore import k_sweep, load_image
from emcore.plot import display_images, plot_k_metrics, plot_rgb_vector

from _photos import DATA


def test_tutorial_plots_render(tmp_path):
    img = load_image(DATA / "chelsea.png")
    display_images(img, img.rgb_matrix[::2, ::2], path=tmp_path / "both.png")
    plot_rgb_vector(img.rgb_vector, max_points=5000, path=tmp_path / "cloud.png")
    for name in ("both.png", "cloud.png"):
        im = np.asarray(PILImage.open(tmp_path / name).convert("RGB"))
        assert im.shape[0] > 100 and im.std() > 5  # something was drawn


def test_k_sweep_costs_fall_and_plot(tmp_path, chelsea):
    result = k_sweep(chelsea, [2, 4, 8])
    assert list(result["k"]) == [2, 4, 8] and (np.diff(result["cost"]) < 0).all()
    assert (result["time"] > 0).all()
    bic = k_sweep(chelsea, [2, 4], method="gmm", covariance_type="diag", max_iter=20)
    assert bic["cost_name"] == "BIC" and bic["cost"][1] < bic["cost"][0]
    plot_k_metrics(result["k"], result["cost"], result["time"], cost_name="inertia",
                   path=tmp_path / "k.svg")
    assert (tmp_path / "k.svg").read_text().startswith("<?xml")


def test_bad_plot_input():
    with pytest.raises(ValueError, match="equal length"):
        plot_k_metrics([1, 2], [1.0], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        plot_rgb_vector(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least one image"):
        display_images()


def test_float_images_on_the_0_255_scale_are_shown_not_clipped_white():
    """The tutorial's quantized image holds k-means centres: floats on 0-255."""
    from emcore.plot import display_images
    rng = np.random.default_rng(0)
    levels = rng.uniform(10, 200, (6, 7, 3))
    fig = display_images(levels, levels / 255.0)
    shown = [ax.get_images()[0].get_array() for ax in fig.axes]
    for arr in shown:
        np.testing.assert_array_equal(np.asarray(arr), np.rint(levels).astype(np.uint8))
