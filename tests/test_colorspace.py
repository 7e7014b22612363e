"""sRGB <-> OKLab against the published reference values and a float64 round trip."""
import numpy as np
import pytest

from emcore.colorspace import oklab_to_srgb, samples_to_oklab, srgb_to_oklab

# Björn Ottosson's table of sRGB colours in OKLab (his "A perceptual color space" post)
REFERENCE = [((255, 255, 255), (1.000, 0.000, 0.000)),
             ((255, 0, 0), (0.628, 0.225, 0.126)),
             ((0, 255, 0), (0.866, -0.234, 0.179)),
             ((0, 0, 255), (0.452, -0.032, -0.312)),
             ((0, 0, 0), (0.000, 0.000, 0.000))]


@pytest.mark.parametrize("rgb, lab", REFERENCE)
def test_published_values(rgb, lab):
    np.testing.assert_allclose(srgb_to_oklab(np.array(rgb)), lab, atol=6e-4)
    kernel = samples_to_oklab(np.array([rgb], dtype=np.uint8), 255.0, dtype=np.float64)[0]
    np.testing.assert_allclose(kernel, lab, atol=6e-4)


def test_round_trip_within_1e6():
    rng = np.random.RandomState(0)
    rgb = rng.uniform(0, 255, (10000, 3))
    np.testing.assert_allclose(oklab_to_srgb(srgb_to_oklab(rgb)), rgb, atol=1e-6)


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 255.0), (np.uint16, 65535.0)])
def test_kernel_equals_the_float64_formula(dtype, scale):
    rng = np.random.RandomState(1)
    rgb = rng.randint(0, int(scale) + 1, (5000, 3)).astype(dtype)
    expected = srgb_to_oklab(rgb, scale)
    np.testing.assert_allclose(samples_to_oklab(rgb, scale, dtype=np.float64), expected,
                               atol=1e-12)
    np.testing.assert_allclose(samples_to_oklab(rgb, scale), expected, atol=1e-6)
    one, two = (samples_to_oklab(rgb, scale, n_threads=t) for t in (1, 2))
    np.testing.assert_array_equal(one, two)
