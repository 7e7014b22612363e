"""One EM iteration and whole fits, beside scikit-learn.

OpenCV's cv2.ml.EM is left out: its Python binding does not accept starting
covariances (trainE's covs0), so it cannot be run from the same start.
"""
import numpy as np
import pytest
from _data import SIZES, image, kmeans_init

from emcore import EM, GaussianMixture, save_new

K_VALUES = [8, 32, 128]


def start(img, k, cov_type):
    """A shared start: means at distinct pixels, equal weights, a 20-level spread."""
    means = kmeans_init(img, k)
    prec = {"diag": np.full((k, 3), 1 / 400.0),
            "full": np.repeat(np.eye(3)[None] / 400.0, k, axis=0)}[cov_type]
    return dict(means_init=means, weights_init=np.full(k, 1.0 / k), precisions_init=prec)


def pixels32(img):
    return img.reshape(-1, 3).astype(np.float32)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", K_VALUES)
@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_emcore_iteration(benchmark, size, k, cov_type, n_threads):
    X = pixels32(image(size))
    gm = GaussianMixture(k, covariance_type=cov_type, max_iter=1, tol=0, n_threads=n_threads,
                         **start(image(size), k, cov_type))
    benchmark.group = f"em-iteration {size} {cov_type} K={k}"
    benchmark.extra_info.update(n_threads=n_threads, dtype="float32", pixels=len(X), k=k)
    benchmark(gm.fit, X)
    assert np.isfinite(gm.means_).all() and gm.n_iter_ == 1


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("k", [8, 32])
@pytest.mark.parametrize("cov_type", ["diag", "full"])
def test_sklearn_iteration(benchmark, size, k, cov_type):
    from sklearn.mixture import GaussianMixture as SkGM
    X = pixels32(image(size))
    init = start(image(size), k, cov_type)
    sk = SkGM(k, covariance_type=cov_type, max_iter=1, tol=0, **init)
    benchmark.group = f"em-iteration {size} {cov_type} K={k}"
    benchmark.extra_info.update(peer="scikit-learn", dtype="float32", pixels=len(X), k=k)
    benchmark.pedantic(sk.fit, (X,), rounds=1 if len(X) > 1e6 else 3)
    ours = GaussianMixture(k, covariance_type=cov_type, max_iter=1, tol=0, **init).fit(X)
    np.testing.assert_allclose(ours.means_, sk.means_, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("unique", [True, False], ids=["unique-colours", "every-pixel"])
def test_whole_fit(benchmark, size, unique):
    img = image(size)
    benchmark.group = f"em-fit {size} full K=32 30 epochs"
    benchmark.extra_info.update(unique_colors=unique, pixels=img.shape[0] * img.shape[1])
    em = benchmark.pedantic(lambda: EM(img, 32, unique_colors=unique).fit(30), rounds=1)
    assert em.n_iter_ <= 30 and np.isfinite(em.lower_bound_)


@pytest.mark.parametrize("size", SIZES)
def test_seed_workload(benchmark, size, tmp_path):
    """The replaced project's job: load a photo file, EM(path, 32).fit(30), save_new."""
    from PIL import Image as PILImage
    src = tmp_path / "in.png"
    PILImage.fromarray(image(size)).save(src)
    out = tmp_path / "out.png"
    benchmark.group = f"seed-workload {size}"
    benchmark.extra_info.update(pixels=image(size).shape[0] * image(size).shape[1])

    def job():
        em = EM(str(src), 32)
        em.fit(30)
        save_new(em, str(out))
    benchmark.pedantic(job, rounds=3 if len(SIZES) == 1 else 2)
    assert PILImage.open(out).size == PILImage.open(src).size
