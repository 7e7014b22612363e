"""One Lloyd iteration beside scikit-learn, and whole quantization beside Pillow and OpenCV."""
import numpy as np
import pytest
from PIL import Image as PILImage
from _data import SIZES, image

from emcore import KMeans, quantize


def jittered32(img):
    """Pixels plus fixed sub-unit noise: integer pixels tie exactly, and each library breaks
    ties its own way, which would make the agreement check meaningless."""
    X = img.reshape(-1, 3).astype(np.float64)
    return (X + np.random.RandomState(7).uniform(-0.5, 0.5, X.shape)).astype(np.float32)


def exact_inertia(X, model):
    centers = np.asarray(model.cluster_centers_, dtype=np.float64)
    return float(((X.astype(np.float64) - centers[model.labels_]) ** 2).sum())


def psnr(a, b):
    mse = ((a.astype(np.float64) - b) ** 2).mean()
    return 10 * np.log10(255 ** 2 / mse)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", [8, 32, 128])
def test_emcore_lloyd_iteration(benchmark, size, k, n_threads):
    X = jittered32(image(size))
    init = X[np.random.RandomState(0).choice(len(X), k, replace=False)]
    km = KMeans(k, init=init, max_iter=1, n_threads=n_threads)
    benchmark.group = f"kmeans-iteration {size} K={k}"
    benchmark.extra_info.update(n_threads=n_threads, dtype="float32", pixels=len(X), k=k)
    benchmark(km.fit, X)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", [8, 32, 128])
def test_sklearn_lloyd_iteration(benchmark, size, k):
    from sklearn.cluster import KMeans as SkKMeans
    X = jittered32(image(size))
    init = X[np.random.RandomState(0).choice(len(X), k, replace=False)]
    sk = SkKMeans(k, init=init, n_init=1, max_iter=1, algorithm="lloyd")
    benchmark.group = f"kmeans-iteration {size} K={k}"
    benchmark.extra_info.update(peer="scikit-learn", dtype="float32", pixels=len(X), k=k)
    benchmark.pedantic(sk.fit, (X,), rounds=3)
    ours = KMeans(k, init=init, max_iter=1).fit(X)
    # the same centres (to 1/100 of a grey level), and each inertia against its exact
    # float64 value: ours to 1e-8; scikit-learn sums float32 in float32 (2e-4 off at 2 MP)
    np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, rtol=0, atol=1e-2)
    np.testing.assert_allclose(ours.inertia_, exact_inertia(X, ours), rtol=1e-8)
    np.testing.assert_allclose(sk.inertia_, exact_inertia(X, sk), rtol=1e-3)


@pytest.mark.parametrize("size", SIZES)
def test_quantize_emcore(benchmark, size, n_threads):
    img = image(size)
    benchmark.group = f"quantize {size} 32 colours"
    q = benchmark.pedantic(lambda: quantize(img, 32, n_threads=n_threads)[0], rounds=3)
    benchmark.extra_info.update(n_threads=n_threads, psnr=round(psnr(img, q), 3))
    pil = np.asarray(PILImage.fromarray(img).quantize(32, method=PILImage.Quantize.MEDIANCUT)
                     .convert("RGB"))
    assert psnr(img, q) > psnr(img, pil)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("method", ["MEDIANCUT", "FASTOCTREE"])
def test_quantize_pillow(benchmark, size, method):
    img = image(size)
    pil = PILImage.fromarray(img)
    benchmark.group = f"quantize {size} 32 colours"
    q = benchmark.pedantic(
        lambda: np.asarray(pil.quantize(32, method=getattr(PILImage.Quantize, method))
                           .convert("RGB")), rounds=3)
    benchmark.extra_info.update(peer=f"Pillow {method.lower()}", psnr=round(psnr(img, q), 3))
    assert psnr(img, q) < psnr(img, quantize(img, 32)[0])


@pytest.mark.parametrize("size", SIZES)
def test_quantize_opencv(benchmark, size):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is optional: pip install '.[bench]'")
    img = image(size)
    X = img.reshape(-1, 3).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 300, 1e-2)

    def run():
        cv2.setRNGSeed(0)
        _, labels, centers = cv2.kmeans(X, 32, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
        return np.clip(np.rint(centers), 0, 255).astype(np.uint8)[labels.ravel()].reshape(img.shape)
    benchmark.group = f"quantize {size} 32 colours"
    q = benchmark.pedantic(run, rounds=1)
    benchmark.extra_info.update(peer="OpenCV kmeans", psnr=round(psnr(img, q), 3))
    assert abs(psnr(img, q) - psnr(img, quantize(img, 32)[0])) < 1.5  # same method, similar fit
