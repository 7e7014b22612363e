"""SpatialGaussianMixture: the mean-field kernel against a float64 numpy reference,
beta = 0 against GaussianMixture, exact labels where there is no noise, thread
counts, masks, volumes and model files."""
import itertools

import numpy as np
import pytest

from emcore import GaussianMixture, SpatialGaussianMixture, load
from emcore import _kernels
from emcore.spatial import box_mean, neighbourhood


def reference_sweeps(data, q, inside, shape, offsets, coupling, hard, n_sweeps):
    """Textbook colour-by-colour Potts mean-field (or ICM) in float64 numpy."""
    nz, ny, nx = shape
    k = data.shape[1]
    q = q.astype(np.float64).reshape(nz, ny, nx, k).copy()
    data = data.astype(np.float64).reshape(nz, ny, nx, k)
    inside = inside.reshape(nz, ny, nx).astype(bool)
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    axial = ((offsets != 0).sum(axis=1) == 1).all()
    colour = (z + y + x) % 2 if axial else 4 * (z % 2) + 2 * (y % 2) + x % 2
    for _ in range(n_sweeps):
        for c in range(2 if axial else 8):
            field = data.copy()
            for (dz, dy, dx), weight in zip(offsets, coupling):
                for iz, iy, ix in itertools.product(range(nz), range(ny), range(nx)):
                    jz, jy, jx = iz + dz, iy + dy, ix + dx
                    if 0 <= jz < nz and 0 <= jy < ny and 0 <= jx < nx and inside[jz, jy, jx]:
                        field[iz, iy, ix] += weight * q[jz, jy, jx]
            update = (colour == c) & inside
            if hard:
                new = np.eye(k)[field.argmax(axis=-1)]
            else:
                new = np.exp(field - field.max(axis=-1, keepdims=True))
                new /= new.sum(axis=-1, keepdims=True)
            q[update] = new[update]
    return q.reshape(-1, k)


def random_field(shape, k, seed):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    data = rng.normal(0, 2, (n, k))
    q = rng.dirichlet(np.ones(k), n)
    inside = (rng.uniform(size=n) > 0.2).astype(np.uint8)
    return data, q, inside


@pytest.mark.parametrize("dims,connectivity", [(2, 1), (2, 2), (3, 1), (3, 2), (3, 3)])
@pytest.mark.parametrize("hard", [False, True])
def test_sweeps_equal_a_float64_reference(dims, connectivity, hard):
    shape = (1, 7, 9) if dims == 2 else (4, 5, 6)
    offsets, weights = neighbourhood(dims, connectivity, (1.0, 2.0, 1.5)[:dims])
    coupling = 0.8 * weights
    data, q, inside = random_field(shape, 4, seed=dims * 10 + connectivity)
    expected = reference_sweeps(data, q, inside, shape, offsets, coupling, hard, 3)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 2e-5)):
        got = q.astype(dtype)
        _kernels.mrf_sweeps(data.astype(dtype), got, inside, shape, offsets, coupling, hard, 3,
                            2)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)


def test_sweeps_leave_outside_voxels_alone():
    shape = (1, 6, 6)
    offsets, weights = neighbourhood(2, 2)
    data, q, inside = random_field(shape, 3, seed=5)
    before = q.copy()
    _kernels.mrf_sweeps(data, q, inside, shape, offsets, weights, False, 2, 1)
    np.testing.assert_array_equal(q[inside == 0], before[inside == 0])
    assert not np.array_equal(q[inside == 1], before[inside == 1])


def test_posterior_sums_are_the_weighted_moments():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 3))
    q = rng.dirichlet(np.ones(4), 1000)
    w = (rng.uniform(size=1000) > 0.3).astype(np.float64)
    centre = rng.normal(size=(4, 3))
    for full in (False, True):
        n_stats = 1 + 3 + (6 if full else 3)
        stats = np.empty((2, 4, n_stats))
        _kernels.posterior_sums(X, q, None, w, centre, full, 512, stats, 2)
        total = stats.sum(axis=0)
        r = q * w[:, None]
        for k in range(4):
            d = X - centre[k]
            iu = np.triu_indices(3)
            second = (d[:, :, None] * d[:, None, :])[:, iu[0], iu[1]] if full else d**2
            expected = np.concatenate([[r[:, k].sum()], r[:, k] @ d, r[:, k] @ second])
            np.testing.assert_allclose(total[k], expected, rtol=1e-12)


def test_neighbourhoods():
    assert [len(neighbourhood(2, c)[0]) for c in (1, 2)] == [4, 8]
    assert [len(neighbourhood(3, c)[0]) for c in (1, 2, 3)] == [6, 18, 26]
    offsets, weights = neighbourhood(3, 3, (2.0, 1.0, 1.0))
    distance = np.sqrt(((offsets * [2.0, 1.0, 1.0]) ** 2).sum(axis=1))
    np.testing.assert_allclose(weights * distance, weights[0] * distance[0])
    np.testing.assert_allclose(weights.sum(), 6.0)
    np.testing.assert_array_equal(neighbourhood(2, 1)[1], np.ones(4))


@pytest.mark.parametrize("connectivity", [1, 2, 3])
def test_an_infinite_spacing_leaves_out_that_axis(connectivity):
    # a stack of slices coupled as each slice alone: the 2-D neighbourhood, weights too
    offsets, weights = neighbourhood(3, connectivity, (np.inf, 1.0, 1.0))
    flat_offsets, flat_weights = neighbourhood(2, min(connectivity, 2))
    np.testing.assert_array_equal(offsets, flat_offsets)
    np.testing.assert_allclose(weights, flat_weights, rtol=1e-15)
    with pytest.raises(ValueError, match="no neighbours"):
        neighbourhood(2, 2, (np.inf, np.inf))
    for bad in ((np.inf, np.inf, np.inf), (np.nan, 1.0, 1.0), (0.0, 1.0, 1.0)):
        with pytest.raises(ValueError, match="spacing"):
            SpatialGaussianMixture(2, spatial_dims=3, spacing=bad).fit(np.zeros((2, 3, 3)))


def blocks(shape, n_classes=3, seed=0):
    """Labels of rectangles of random classes: no class is a single speck."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, dtype=np.intp)
    for _ in range(12):
        lo = [rng.integers(0, s - 4) for s in shape]
        hi = [a + rng.integers(4, max(5, s // 2)) for a, s in zip(lo, shape)]
        labels[tuple(slice(a, b) for a, b in zip(lo, hi))] = rng.integers(n_classes)
    labels.flat[:n_classes] = np.arange(n_classes)  # every class present
    return labels


def same_partition(a, b):
    """True when a and b are the same labelling up to renaming the labels."""
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return len(pairs) == len(set(a.ravel().tolist())) == len(set(b.ravel().tolist()))


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
def test_noiseless_labels_are_exact(cov_type):
    truth = blocks((40, 50))
    colours = np.array([[20.0, 200.0, 40.0], [200.0, 30.0, 90.0], [90.0, 120.0, 220.0]])
    rng = np.random.default_rng(1)
    image = colours[truth] + rng.normal(0, 0.5, truth.shape + (3,))  # noise far below the gaps
    model = SpatialGaussianMixture(3, covariance_type=cov_type, random_state=0).fit(image)
    assert same_partition(model.labels_, truth)


def test_volume_labels_are_exact_and_spacing_is_used():
    truth = blocks((12, 14, 16), n_classes=2, seed=4)
    image = np.where(truth == 1, 150.0, 50.0) + np.random.default_rng(2).normal(0, 1, truth.shape)
    model = SpatialGaussianMixture(2, spatial_dims=3, spacing=(3.0, 1.0, 1.0),
                                   random_state=0).fit(image)
    assert model.labels_.shape == truth.shape
    assert same_partition(model.labels_, truth)
    assert len(model.offsets_) == 26
    np.testing.assert_allclose(model.coupling_.sum(), 6.0 * model.beta)  # x the total weight


def noisy_phantom(sigma=30.0, shape=(96, 96), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    truth = ((yy - 48) ** 2 / 35**2 + (xx - 48) ** 2 / 28**2 <= 1).astype(np.intp)
    truth[(yy - 30) ** 2 + (xx - 60) ** 2 <= 100] = 2
    truth[(yy - 70) ** 2 + (xx - 30) ** 2 <= 64] = 2
    image = np.array([60.0, 120.0, 180.0])[truth] + rng.normal(0, sigma, shape)
    return image, truth


def accuracy(labels, truth, k=3):
    return max(np.mean(np.array(p)[labels] == truth) for p in itertools.permutations(range(k)))


def test_beats_the_per_pixel_bayes_limit_on_noise():
    image, truth = noisy_phantom()
    means = np.array([60.0, 120.0, 180.0])
    prior = np.bincount(truth.ravel(), minlength=3) / truth.size
    bayes = (-(image[..., None] - means) ** 2 / (2 * 30.0**2) + np.log(prior)).argmax(axis=-1)
    bayes_accuracy = np.mean(bayes == truth)
    per_pixel = GaussianMixture(3, random_state=0).fit(image.reshape(-1, 1))
    per_pixel_accuracy = accuracy(per_pixel.predict(image.reshape(-1, 1)).reshape(truth.shape),
                                  truth)
    for e_step in ("mean-field", "icm"):
        labels = SpatialGaussianMixture(3, e_step=e_step, random_state=0).fit(image).labels_
        assert accuracy(labels, truth) > max(bayes_accuracy, per_pixel_accuracy) + 0.1


def test_beta_zero_is_the_per_pixel_mixture():
    image, _ = noisy_phantom(sigma=20.0)
    spatial = SpatialGaussianMixture(3, beta=0.0, covariance_type="diag",
                                     random_state=1).fit(image)
    plain = GaussianMixture(3, covariance_type="diag", random_state=1).fit(image.reshape(-1, 1))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(spatial, name), getattr(plain, name))
    np.testing.assert_array_equal(spatial.labels_.ravel(), plain.predict(image.reshape(-1, 1)))


@pytest.mark.parametrize("e_step", ["mean-field", "icm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_independent_of_the_thread_count(e_step, dtype):
    image, _ = noisy_phantom(sigma=35.0)
    fits = [SpatialGaussianMixture(3, e_step=e_step, random_state=0, n_threads=t)
            .fit(image.astype(dtype)) for t in (1, 2, 3)]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.labels_, fits[0].labels_)
        np.testing.assert_array_equal(other.means_, fits[0].means_)
        np.testing.assert_array_equal(other.covariances_, fits[0].covariances_)
    assert fits[0].means_.dtype == dtype


def test_the_iteration_is_em_with_the_reference_e_step():
    """One spatial iteration by hand from the start (max_iter=0): the Gaussians'
    posteriors without mixture weights, the reference sweep, then weighted moments."""
    image, _ = noisy_phantom(sigma=30.0, shape=(24, 20))
    kw = dict(beta=1.2, covariance_type="diag", tol=0, random_state=0)
    start = SpatialGaussianMixture(3, max_iter=0, **kw).fit(image)
    one = SpatialGaussianMixture(3, max_iter=1, **kw).fit(image)
    X = image.reshape(-1, 1)
    mu, var = start.means_[:, 0], start.covariances_[:, 0]
    log_p = -0.5 * (X - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var)
    log_r = log_p - np.logaddexp.reduce(log_p, axis=1, keepdims=True)
    offsets, weights = neighbourhood(2, 2)
    inside = np.ones(len(X), dtype=np.uint8)
    q = reference_sweeps(log_r, np.exp(log_r), inside, (1, 24, 20), offsets, 1.2 * weights,
                         False, 1)
    nk = q.sum(axis=0)
    means = (q * X).sum(axis=0) / nk
    variances = (q * (X - means) ** 2).sum(axis=0) / nk + 1e-6
    np.testing.assert_allclose(one.weights_, nk / nk.sum(), rtol=1e-9)
    np.testing.assert_allclose(one.means_[:, 0], means, rtol=1e-9)
    np.testing.assert_allclose(one.covariances_[:, 0], variances, rtol=1e-8)


def test_box_mean_against_loops():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 6, 7, 2))
    inside = rng.uniform(size=(5, 6, 7)) > 0.3
    got = box_mean(values, inside, 1)
    for z, y, x in itertools.product(range(5), range(6), range(7)):
        box = (slice(max(z - 1, 0), z + 2), slice(max(y - 1, 0), y + 2),
               slice(max(x - 1, 0), x + 2))
        chosen = values[box][inside[box]]
        expected = chosen.mean(axis=0) if len(chosen) else np.zeros(2)
        np.testing.assert_allclose(got[z, y, x], expected, rtol=1e-12, atol=1e-12)


def test_mask():
    image, truth = noisy_phantom(sigma=25.0)
    mask = np.zeros(truth.shape, dtype=bool)
    mask[10:80, 5:90] = True
    model = SpatialGaussianMixture(3, random_state=0).fit(image, mask=mask)
    assert (model.labels_[~mask] == -1).all() and (model.labels_[mask] >= 0).all()
    changed = image.copy()
    changed[~mask] = 1e6  # what lies outside the mask changes nothing
    again = SpatialGaussianMixture(3, random_state=0).fit(changed, mask=mask)
    np.testing.assert_array_equal(again.labels_, model.labels_)
    np.testing.assert_array_equal(again.means_, model.means_)
    proba = model.predict_proba(image, mask=mask)
    assert proba.shape == truth.shape + (3,)
    assert (proba[~mask] == 0).all()
    np.testing.assert_allclose(proba[mask].sum(axis=-1), 1, rtol=1e-6)


def test_predict_on_the_fitted_image_and_model_files(tmp_path):
    image, truth = noisy_phantom(sigma=25.0)
    model = SpatialGaussianMixture(3, random_state=0).fit(image)
    predicted = model.predict(image)
    assert np.mean(predicted == model.labels_) > 0.99
    model.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert isinstance(loaded, SpatialGaussianMixture)
    np.testing.assert_array_equal(loaded.offsets_, model.offsets_)
    np.testing.assert_array_equal(loaded.coupling_, model.coupling_)
    np.testing.assert_array_equal(loaded.predict(image), predicted)


@pytest.mark.parametrize("spacing", [(2.0, 0.5), (np.inf, 1.0, 1.0)])
def test_a_model_file_keeps_the_spacing(tmp_path, spacing):
    # a tuple parameter was left out of the file: the loaded model's spacing was None
    image = noisy_phantom(sigma=25.0)[0]
    if len(spacing) == 3:
        image = np.stack([image, image[::-1]])
    model = SpatialGaussianMixture(2, spacing=spacing, spatial_dims=len(spacing),
                                   random_state=0).fit(image)
    model.save(tmp_path / "m.npz")
    loaded = load(tmp_path / "m.npz")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(image), model.predict(image))
    with np.load(tmp_path / "m.npz") as data:  # a tampered sequence is refused
        members = {key: data[key] for key in data.files}
    members["param-tuple:spacing"] = np.array([["1"]])
    np.savez(tmp_path / "bad.npz", **members)
    with pytest.raises(ValueError, match="sequence of numbers"):
        load(tmp_path / "bad.npz")


@pytest.mark.parametrize("kwargs,error", [
    (dict(beta=-1.0), ValueError), (dict(beta="1"), TypeError), (dict(beta=1e308), ValueError),
    (dict(connectivity=3), ValueError), (dict(spatial_dims=4), ValueError),
    (dict(spacing=(1.0, 0.0)), ValueError), (dict(spacing=(1.0, 1.0, 1.0)), ValueError),
    (dict(e_step="gibbs"), ValueError),
])
def test_bad_parameters(kwargs, error):
    with pytest.raises(error):
        SpatialGaussianMixture(2, **kwargs).fit(np.random.default_rng(0).normal(size=(8, 8)))


def test_a_beta_whose_energies_overflow_is_refused_by_name():
    image = np.random.default_rng(0).normal(size=(8, 8))
    with pytest.raises(ValueError, match="beta must be at most"):  # was: "covariance 2
        SpatialGaussianMixture(2, beta=1e308).fit(image)          # is not positive definite"
    assert SpatialGaussianMixture(2, beta=1e300, random_state=0).fit(image).labels_.shape == (8, 8)


@pytest.mark.parametrize("image,mask,error", [
    (np.zeros(5), None, ValueError),
    (np.zeros((4, 4, 3, 2)), None, ValueError),
    (np.full((4, 4), np.nan), None, ValueError),
    (np.zeros((4, 4)), np.zeros((4, 4), dtype=bool), ValueError),
    (np.zeros((4, 4)), np.ones((4, 5), dtype=bool), ValueError),
    (np.zeros((4, 4)), np.ones((4, 4)), TypeError),
    (np.array([["a"]]), None, TypeError),
])
def test_bad_images(image, mask, error):
    with pytest.raises(error):
        SpatialGaussianMixture(1).fit(image, mask=mask)


def test_the_door_refuses_mismatched_arrays():
    data, q, inside = random_field((1, 4, 4), 2, seed=0)
    offsets, weights = neighbourhood(2, 1)
    bad = [
        dict(shape=(1, 4, 5)), dict(inside=inside[:-1]), dict(data=data[:, :1].copy()),
        dict(offsets=offsets * 2), dict(offsets=np.zeros((1, 3), dtype=np.intp),
                                        coupling=np.ones(1)),
        dict(coupling=np.full(4, np.nan)), dict(q=q.astype(np.float32)),
    ]
    for change in bad:
        args = dict(data=data, q=q.copy(), inside=inside, shape=(1, 4, 4), offsets=offsets,
                    coupling=weights)
        args.update(change)
        with pytest.raises(_kernels.KernelArgumentError):
            _kernels.mrf_sweeps(args["data"], args["q"], args["inside"], args["shape"],
                                args["offsets"], args["coupling"], False, 1, 1)
    for extra in (dict(colour=2), dict(colour=-2), dict(origin=(0, -1, 0))):  # 2 colours here
        with pytest.raises(_kernels.KernelArgumentError):
            _kernels.mrf_sweeps(data, q.copy(), inside, (1, 4, 4), offsets, weights, False, 1,
                                1, **extra)


@pytest.mark.parametrize("dims,e_step", [(3, "mean-field"), (2, "icm")])
def test_a_chunked_dask_volume_equals_the_in_memory_fit(monkeypatch, dims, e_step):
    da = pytest.importorskip("dask.array")
    import emcore.spatial as spatial
    rng = np.random.default_rng(3)
    shape = (14, 18, 20) if dims == 3 else (40, 46)
    truth = blocks(shape, n_classes=3, seed=dims)
    volume = np.array([60.0, 120.0, 180.0])[truth] + rng.normal(0, 30, shape)
    mask = np.ones(shape, dtype=bool)
    mask[..., :3] = False
    chunks = (5, 7, 9) if dims == 3 else (13, 17)
    kw = dict(spatial_dims=dims, e_step=e_step, covariance_type="diag", max_iter=4,
              random_state=0)
    memory = SpatialGaussianMixture(3, **kw).fit(volume, mask=mask)
    monkeypatch.setattr(spatial, "IN_MEMORY_BELOW", 0)  # chunk by chunk, however small
    chunked = SpatialGaussianMixture(3, **kw).fit(da.from_array(volume, chunks=chunks),
                                                  mask=da.from_array(mask, chunks=chunks))
    assert isinstance(chunked.labels_, da.Array)
    np.testing.assert_array_equal(chunked.labels_.compute(), memory.labels_)
    assert chunked.n_iter_ == memory.n_iter_
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(memory, name), rtol=1e-9)
