"""The image pipeline: indexed output, segment colours, dithering, lossless k, defaults."""
import warnings

import numpy as np
import pytest
from PIL import Image as PILImage

from emcore import EM, KMeans, quantize, segment_image
from emcore.pipeline import IMAGE_COVARIANCE, nearest_search_tables

from _photos import segment_mean_palette


def floyd_steinberg_reference(image, palette, strength, low, high, encode=None, searched=None):
    """Serpentine Floyd-Steinberg in plain float64 Python, brute-force nearest colour;
    with ``encode``, the nearest of ``searched`` to the encoded value."""
    h, w, c = image.shape
    err = np.zeros((h + 1, w + 2, c))
    labels = np.empty((h, w), dtype=np.int64)
    for y in range(h):
        step = 1 if y % 2 == 0 else -1
        xs = range(w) if step == 1 else range(w - 1, -1, -1)
        for x in xs:
            value = [min(max(float(image[y, x, ch]) + err[y, x + 1, ch], low), high)
                     for ch in range(c)]
            match, among = (value, palette) if encode is None else (
                [encode(v) for v in value], searched)
            dists = [sum((match[ch] - among[k, ch]) ** 2 for ch in range(c))
                     for k in range(len(palette))]
            best = int(np.argmin(dists))  # lowest index on ties
            labels[y, x] = best
            for ch in range(c):
                e = (value[ch] - palette[best, ch]) * strength
                err[y, x + 1 + step, ch] += e * 7 / 16
                err[y + 1, x + 1 - step, ch] += e * 3 / 16
                err[y + 1, x + 1, ch] += e * 5 / 16
                err[y + 1, x + 1 + step, ch] += e * 1 / 16
    return labels


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_dithering_matches_a_float64_reference(chelsea, strength):
    img = chelsea[100:124, 200:237]
    seg = segment_image(img, 6, dither=strength)
    expected = floyd_steinberg_reference(img, seg.palette.astype(np.float64), strength, 0, 255)
    np.testing.assert_array_equal(seg.labels, expected)
    np.testing.assert_array_equal(seg.image, seg.palette[seg.labels])


def test_dithering_in_linear_light_matches_a_float64_reference(chelsea):
    from emcore.pipeline import ImageSamples

    def decode(u):  # the sRGB transfer function inverted, from its definition
        return u / 12.92 if u <= 0.04045 else ((u + 0.055) / 1.055) ** 2.4

    def encode(v):
        return 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
    img = chelsea[60:84, 150:181]
    palette = segment_image(img, 7).palette.astype(np.float64)
    labels = ImageSamples(img).dither(palette, 15 / 16, linear=True)
    linear_img = np.vectorize(decode)(img / 255.0)
    expected = floyd_steinberg_reference(linear_img, np.vectorize(decode)(palette / 255),
                                         15 / 16, 0.0, 1.0, encode=encode,
                                         searched=palette / 255)
    np.testing.assert_array_equal(labels, expected)
    assert not np.array_equal(labels, ImageSamples(img).dither(palette, 15 / 16))


def test_dithering_uses_only_palette_colours_and_keeps_local_means(coffee):
    plain = segment_image(coffee, 8)
    dithered = segment_image(coffee, 8, dither=1.0)
    np.testing.assert_array_equal(plain.palette, dithered.palette)
    colours = {tuple(c) for c in dithered.image.reshape(-1, 3)}
    assert colours <= {tuple(c) for c in dithered.palette}

    def blurred_error(q):  # error of 8 x 8 block means: what the eye sees from afar
        def blocks(a):
            return a.astype(np.float64).reshape(50, 8, 75, 8, 3).mean(axis=(1, 3))
        return np.sqrt(((blocks(q) - blocks(coffee)) ** 2).mean())
    assert blurred_error(dithered.image) < 0.9 * blurred_error(plain.image)


def test_nearest_search_is_exact_against_brute_force():
    rng = np.random.RandomState(1)
    palette = rng.randint(0, 256, (40, 3)).astype(np.float64)
    palette[5] = palette[9]  # a duplicate: ties go to the lower index
    gap, order = nearest_search_tables(palette)
    assert (order[:, 0] == np.arange(40)).all() and (np.diff(gap, axis=1) >= 0).all()
    img = rng.randint(0, 256, (30, 40, 3)).astype(np.uint8)
    seg_labels = np.empty((30, 40), dtype=np.int32)
    from emcore import _colors
    _colors.floyd_steinberg(np.ascontiguousarray(img), palette, palette, gap, order, 0.0, 0.0,
                            255.0, False, seg_labels)
    d = ((img.reshape(-1, 1, 3).astype(np.float64) - palette[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(seg_labels.ravel(), d.argmin(1))  # strength 0: nearest
    assert not (seg_labels == 9).any()


@pytest.mark.parametrize("ext", [".png", ".gif", ".tif", ".bmp"])
def test_indexed_output_round_trips_exactly(tmp_path, chelsea, ext):
    seg = segment_image(chelsea, 12)
    seg.save(tmp_path / f"q{ext}")
    with PILImage.open(tmp_path / f"q{ext}") as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), seg.image)


@pytest.mark.parametrize("lossy", [".jpg", ".avif"])
def test_rgb_and_lossy_outputs(tmp_path, chelsea, lossy):
    seg = segment_image(chelsea, 12)
    seg.save(tmp_path / "q.png", rgb=True)
    assert PILImage.open(tmp_path / "q.png").mode == "RGB"
    PILImage.init()
    if lossy not in PILImage.EXTENSION:
        pytest.skip(f"this Pillow has no {lossy} writer")
    with pytest.warns(UserWarning, match="lossy"):
        seg.save(tmp_path / f"q{lossy}")


def test_segment_colours_are_the_pixel_means(chelsea):
    for method, options in [("kmeans", {}), ("gmm", {"covariance_type": "full"})]:
        seg = segment_image(chelsea, 7, method=method, **options)
        np.testing.assert_array_equal(seg.palette, segment_mean_palette(chelsea, seg.labels, 7))


@pytest.mark.parametrize("k", [6, 40])
def test_kmeans_palette_is_a_local_optimum_among_integers(chelsea, k):
    img = chelsea[::2, ::2]
    seg = segment_image(img, k)
    flat = img.reshape(-1, 3).astype(np.float64)
    palette = seg.palette.astype(np.float64)
    d = ((flat[:, None] - palette[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(seg.labels.ravel(), d.argmin(axis=1))  # nearest entry
    np.testing.assert_array_equal(seg.palette, segment_mean_palette(img, seg.labels, k))
    # at most the error of the fitted centres rounded, each pixel on its centre's entry
    rounded = np.clip(np.rint(seg.model.cluster_centers_), 0, 255)
    centre_of = seg.model.predict(flat.astype(np.float32))
    assert d.min(axis=1).sum() <= ((flat - rounded[centre_of]) ** 2).sum()


def test_sixteen_bit_palette_for_eight_bit_files_is_a_local_optimum(chelsea):
    from emcore.pipeline import ImageSamples, finish, fit_model
    rng = np.random.RandomState(0)
    img16 = (chelsea[::3, ::3].astype(np.int64) * 257 + rng.randint(-128, 129, (
        chelsea[::3, ::3].shape))).clip(0, 65535).astype(np.uint16)
    samples = ImageSamples(img16)
    seg = finish(samples, fit_model(samples, 12), eight_bit=True)
    assert seg.palette.dtype == np.uint8
    flat = img16.reshape(-1, 3).astype(np.float64)
    entries = seg.palette.astype(np.float64) * 257
    d = ((flat[:, None] - entries[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(seg.labels.ravel(), d.argmin(axis=1))
    for j in np.unique(seg.labels):
        mean = flat[seg.labels.ravel() == j].mean(axis=0)
        np.testing.assert_array_equal(seg.palette[j], np.rint(mean / 257))


def test_segment_means_lower_the_error_of_a_mixture(chelsea):
    def mse(seg):
        return ((seg.image.astype(np.float64) - chelsea) ** 2).mean()
    kw = dict(method="gmm", covariance_type="full", max_iter=20)
    assert mse(segment_image(chelsea, 8, **kw)) < mse(
        segment_image(chelsea, 8, repaint="component", **kw))


def test_more_colours_than_the_image_has_is_lossless(chelsea):
    img = chelsea[:40, :40]
    n = len(np.unique(img.reshape(-1, 3), axis=0))
    for method in ("kmeans", "gmm"):
        with pytest.warns(UserWarning, match="keeping every colour"):
            seg = segment_image(img, n + 50, method=method)
        np.testing.assert_array_equal(seg.image, img)
    with pytest.warns(UserWarning, match="lossless"):
        em = EM(img, n + 1).fit(5)
    assert em.n_clusters == n
    np.testing.assert_array_equal(em.segmented(), img)
    with pytest.raises(ValueError, match="more than"):  # the estimators keep raising
        KMeans(n + 1).fit(np.unique(img.reshape(-1, 3), axis=0))


def test_oklab_fit_gives_a_palette_in_srgb(coffee):
    seg = segment_image(coffee, 16, color_space="oklab")
    assert seg.palette.dtype == np.uint8 and seg.model.cluster_centers_.max() < 1.01
    np.testing.assert_array_equal(seg.palette, segment_image(
        coffee, 16, color_space="oklab").palette)  # deterministic
    with pytest.raises(TypeError, match="8 or 16-bit"):
        segment_image(coffee.astype(np.float64), 4, color_space="oklab")
    with pytest.raises(ValueError, match="3 colour channels"):
        segment_image(coffee[:, :, 0], 4, color_space="oklab")


def test_the_defaults_chosen_by_measurement(chelsea):
    # README "Choosing the defaults": each of these fails if the default changes back
    assert IMAGE_COVARIANCE == "spherical"
    em = EM(chelsea, 4)
    assert em.model_.covariance_type == "spherical" and em.model_.init_params == "kmeans"
    assert em.repaint == "segment" and em.dither == 0.0
    seg = segment_image(chelsea, 4)
    assert isinstance(seg.model, KMeans)
    q, palette, labels = quantize(chelsea, 4)
    np.testing.assert_array_equal(q, seg.image)  # quantize is the same pipeline


def test_bad_pipeline_arguments(chelsea):
    for kw, error, message in [(dict(dither=1.5), ValueError, "dither"),
                               (dict(dither=-1), ValueError, "dither"),
                               (dict(repaint="median"), ValueError, "repaint"),
                               (dict(color_space="hsv"), ValueError, "color_space"),
                               (dict(method="median"), ValueError, "method")]:
        with pytest.raises(error, match=message):
            segment_image(chelsea, 4, **kw)


def test_sixteen_bit_colour_arrays_and_alpha(chelsea):
    img16 = chelsea.astype(np.uint16) * 257
    seg = segment_image(img16, 5, dither=1.0)
    assert seg.image.dtype == np.uint16 and seg.palette.dtype == np.uint16
    rgba = np.dstack([chelsea, np.full(chelsea.shape[:2], 7, np.uint8)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = segment_image(rgba, 5).image
    np.testing.assert_array_equal(out[:, :, 3], 7)


def test_integer_pixels_of_any_type_are_the_8_bit_image_they_fit(chelsea):
    # numpy's default int64 (np.array of a list): alpha was taken on int64's full scale
    # (9.2e18), so every pixel counted as nearly transparent
    alpha = np.full(chelsea.shape[:2], 255, np.uint8)
    alpha[:, :40] = 0
    alpha[:, 40:80] = 120
    rgba = np.dstack([chelsea, alpha])
    expected = segment_image(rgba, 6)
    for dtype in (np.int64, np.int32, np.uint32):
        got = segment_image(rgba.astype(dtype), 6)
        assert got.image.dtype == np.uint8
        np.testing.assert_array_equal(got.image, expected.image)
        np.testing.assert_array_equal(got.labels, expected.labels)


def noisy_regions(seed=0, sigma=45.0):
    """A (60, 80) RGB uint8 image of three rectangles of colours, with strong noise."""
    truth = np.zeros((60, 80), dtype=np.intp)
    truth[10:45, 8:40] = 1
    truth[20:55, 45:75] = 2
    colours = np.array([[60, 90, 140], [170, 80, 60], [110, 180, 100]], dtype=np.float64)
    noise = np.random.default_rng(seed).normal(0, sigma, truth.shape + (3,))
    return np.clip(np.rint(colours[truth] + noise), 0, 255).astype(np.uint8), truth


def partition_accuracy(labels, truth):
    import itertools
    return max(np.mean(np.array(p)[labels] == truth) for p in itertools.permutations(range(3)))


def test_stacked_frames_are_smoothed_each_within_itself():
    # two noisy frames stacked, the seam between unlike regions: each frame's labels are
    # the same (up to renaming) whichever frame comes first; as one grid they were not
    # (6 pixels of the rows at the seam differed)
    import itertools

    from emcore.pipeline import ImageSamples, fit_model
    first = noisy_regions()[0]
    second = np.ascontiguousarray(np.roll(noisy_regions(seed=1)[0], -25, axis=0))
    fits = []
    for order in ((first, second), (second, first)):
        samples = ImageSamples(np.concatenate(order), unique_colors=False, frames=2)
        model = fit_model(samples, 3, smoothing=1.5, random_state=0)
        assert model.labels_.shape == (2,) + first.shape[:2]
        assert not model.offsets_[:, 0].any()  # no neighbour in another frame
        fits.append(model.labels_)
    (a_first, a_second), (b_second, b_first) = fits
    renamed = [np.array(p) for p in itertools.permutations(range(3))]
    assert min(int((a_first != p[b_first]).sum() + (a_second != p[b_second]).sum())
               for p in renamed) == 0
    with pytest.raises(ValueError, match="stacked frames"):
        ImageSamples(first[:-1], frames=2)


def test_smoothing_fits_the_spatial_mixture_to_the_pixel_grid():
    from emcore import SpatialGaussianMixture
    image, truth = noisy_regions()
    smooth = segment_image(image, 3, smoothing=1.5)
    direct = SpatialGaussianMixture(3, beta=1.5, covariance_type=IMAGE_COVARIANCE,
                                    random_state=0).fit(image.astype(np.float32))
    np.testing.assert_array_equal(smooth.labels, direct.labels_)
    assert isinstance(smooth.model, SpatialGaussianMixture)
    per_pixel = segment_image(image, 3, method="gmm")
    assert partition_accuracy(smooth.labels, truth) > 0.98
    assert partition_accuracy(smooth.labels, truth) > partition_accuracy(per_pixel.labels,
                                                                         truth) + 0.1
    # each segment painted with its pixels' mean colour
    for k in range(3):
        np.testing.assert_allclose(smooth.palette[k], image[smooth.labels == k].mean(axis=0),
                                   atol=0.5)


def test_smoothing_with_transparent_pixels_keeps_them_transparent():
    image, truth = noisy_regions(seed=1)
    alpha = np.full(truth.shape, 255, dtype=np.uint8)
    alpha[:, :6] = 0  # a transparent margin: outside the spatial fit's mask
    rgba = np.dstack([image, alpha])
    result = segment_image(rgba, 4, smoothing=1.5)
    assert (result.palette[result.labels[:, :6]][..., 3] == 0).all()
    assert (result.palette[result.labels[:, 6:]][..., 3] == 255).all()
    assert len(np.unique(result.labels[:, 6:])) == 3


def test_smoothing_refuses_what_it_cannot_do():
    image, _ = noisy_regions()
    with pytest.raises(ValueError, match="smoothing"):
        segment_image(image, 3, smoothing=-1.0)
    with pytest.raises(TypeError):
        EM(image, 3, smoothing=1.0, tol=1e-3)  # not an option of the spatial fit
    em = EM(image, 3, smoothing=1.5).fit(30)
    np.testing.assert_array_equal(em.labels(), segment_image(image, 3, smoothing=1.5).labels)


def _reference_cells(colors, fit_samples, weights, k, bits=6):
    """seeding_cells in float64 numpy: group by the top bits, heavy groups split into
    their colours, each point the weighted mean of its colours, in first-seen order."""
    top = colors.astype(np.int64) >> (8 * colors.itemsize - bits)
    _, group = np.unique(top, axis=0, return_inverse=True)
    group = group.reshape(-1)
    mass = np.bincount(group, weights)
    heavy = mass[group] > weights.sum() / (4 * k)
    key = np.where(heavy, group.max() + 1 + np.arange(len(colors)), group)
    _, first, point = np.unique(key, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.intp)
    rank[np.argsort(first)] = np.arange(len(first))
    point = rank[point.reshape(-1)]
    w = np.bincount(point, weights)
    means = np.stack([np.bincount(point, weights * fit_samples[:, d].astype(np.float64))
                      for d in range(fit_samples.shape[1])], axis=1) / w[:, None]
    return means, w


@pytest.mark.parametrize("k", [16, 256])
def test_seeding_cells_match_a_float64_grouping(chelsea, k):
    from emcore.pipeline import ImageSamples, seeding_cells
    samples = ImageSamples(chelsea)
    got = seeding_cells(samples.samples, samples.fit_samples, samples.weights, k)
    assert got is not None
    values, weights = got
    want_values, want_weights = _reference_cells(samples.samples, samples.fit_samples,
                                                 samples.weights, k)
    assert len(values) < 0.8 * len(samples.samples) and values.dtype == np.float32
    # the model keeps them as its start: they hold their own rows, not views of M rows
    assert values.base is None and weights.base is None
    np.testing.assert_array_equal(weights, want_weights)  # integer counts: exact
    np.testing.assert_allclose(values, want_values, rtol=1e-6, atol=1e-4)
    if k == 256:  # some cells are heavy at 256: their colours stay points of their own
        assert len(values) > len(np.unique(samples.samples >> 2, axis=0))


def test_seeding_cells_only_where_they_save_points(chelsea):
    from emcore.pipeline import ImageSamples, seeding_cells
    spread = (np.arange(60, dtype=np.uint8) * 4)[:, None].repeat(3, axis=1)  # a cell each
    assert seeding_cells(spread, spread.astype(np.float32), np.ones(60), 4) is None
    floats = chelsea.reshape(-1, 3)[:500].astype(np.float32)
    assert seeding_cells(floats, floats, np.ones(500), 4) is None
    # one colour of most pixels, and 200 full cells of one-pixel colours: 201 cells,
    # enough for 16 clusters, too few for 256 (they would be a coarse start)
    corner = np.random.RandomState(0).choice(64 ** 3, 200, replace=False)
    corner = np.stack([corner >> 12, (corner >> 6) & 63, corner & 63], axis=1) * 4
    offsets = np.stack(np.meshgrid(*[range(4)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    rare = (corner[:, None, :] + offsets[None]).reshape(-1, 3).astype(np.uint8)
    image = np.concatenate([np.full((400 * 400 - len(rare), 3), 7, np.uint8), rare])
    samples = ImageSamples(image.reshape(400, 400, 3))
    cells = seeding_cells(samples.samples, samples.fit_samples, samples.weights, 16)
    assert cells is not None and len(cells[0]) == 201
    assert seeding_cells(samples.samples, samples.fit_samples, samples.weights, 256) is None


def test_image_kmeans_seeds_on_cells_reproducibly_for_any_thread_count(chelsea):
    from emcore.kmeans import kmeans_plusplus
    from emcore.pipeline import CellSeeding, ImageSamples, fit_model, seeding_cells
    samples = ImageSamples(chelsea)
    model = fit_model(samples, 32, random_state=3, n_threads=1)
    assert isinstance(model.init, CellSeeding) and model._n_init == 1
    cells = seeding_cells(samples.samples, samples.fit_samples, samples.weights, 32)
    start = kmeans_plusplus(*cells, 32, np.random.RandomState(3), 1)
    alone = KMeans(32, init=start, n_init=1, over_relaxation=1.8, n_threads=1).fit(
        samples.fit_samples, sample_weight=samples.weights)
    np.testing.assert_array_equal(model.cluster_centers_, alone.cluster_centers_)
    for n_threads in (2, 3):
        again = fit_model(samples, 32, random_state=3, n_threads=n_threads)
        np.testing.assert_array_equal(again.cluster_centers_, model.cluster_centers_)
    assert fit_model(samples, 32, random_state=3, n_init=3)._n_init == 3  # still honoured


@pytest.mark.parametrize("grey", [False, True])
def test_labels_and_image_are_each_pixels_nearest_entry_and_its_colour(chelsea, grey):
    pixels = chelsea.mean(axis=2).astype(np.uint8) if grey else chelsea
    seg = segment_image(pixels, 24)
    # the k-means palette among integers: every pixel on its nearest entry (float64,
    # first on ties), painted with that entry's colour
    values = pixels.reshape(len(pixels), -1, 1 if grey else 3).astype(np.float64)
    d = ((values[:, :, None, :] - seg.palette.astype(np.float64)) ** 2).sum(-1)
    nearest = d.argmin(-1)
    np.testing.assert_array_equal(seg.labels, nearest)
    assert seg.labels.dtype == np.int32
    painted = seg.palette[nearest]
    np.testing.assert_array_equal(seg.image, painted[:, :, 0] if grey else painted)
    indices = seg.indices()
    assert indices.dtype == np.uint8
    np.testing.assert_array_equal(indices, nearest)
    np.testing.assert_array_equal(seg.image_rows(slice(100, 157)), seg.image[100:157])
    # both made: the result no longer holds the samples (the pixels, their colours' index)
    assert seg._samples is None
    np.testing.assert_array_equal(seg.indices(), nearest)


def test_8_bit_rgb_samples_hold_no_index_per_pixel(chelsea):
    """An 8-bit RGB image's samples keep the 2 MiB bitmap of its colours' codes, not
    each pixel's index into them (4 bytes a pixel: 92 MiB at 24 MP), and its labels
    come from the bitmap: each pixel's distinct colour's label."""
    import tracemalloc
    from emcore.pipeline import ImageSamples
    big = np.tile(chelsea, (4, 3, 1))  # 1200 x 1353: an int32 index is 6.5 MB
    ImageSamples(chelsea[:2], n_threads=1)  # this thread's kernel scratch, kept (3 MiB)
    tracemalloc.start()
    try:
        samples = ImageSamples(big, n_threads=1)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert samples.inverse is None and samples.code_bitmap.nbytes == 2**21
    # the bitmap, the distinct colours with their counts and float32 fit samples
    assert held < 2**21 + samples.n_distinct * (3 + 8 + 12) + 2**16, held
    colors = samples.samples
    table = np.arange(len(colors), dtype=np.int32)
    index = samples.to_pixels(table)
    np.testing.assert_array_equal(colors[index], big)
    assert samples.to_pixels(table % 256, np.uint8).dtype == np.uint8


def test_an_indexed_save_makes_neither_the_label_map_nor_the_image(tmp_path, chelsea):
    import tracemalloc
    big = np.tile(chelsea, (4, 3, 1))  # 1200 x 1353: an int32 map is 6.5 MB, RGB 4.9 MB
    seg = segment_image(big, 64)
    tracemalloc.start()
    try:
        seg.save(tmp_path / "q.png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # neither was made, only the uint8 indices (a byte a pixel, their scanlines and
    # the deflated data: 3 bytes a pixel at most), looked up from each pixel's colour
    # (image.rgb8_labels: no int32 index to convert)
    assert seg._labels is None and seg._image is None
    assert peak < 3 * big.shape[0] * big.shape[1], peak
    with PILImage.open(tmp_path / "q.png") as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), seg.palette[seg.labels])
    # a dithered result has its labels from the ditherer: the same file as writing them
    dithered = segment_image(chelsea, 40, dither=1.0)
    dithered.save(tmp_path / "d.png")
    with PILImage.open(tmp_path / "d.png") as im:
        np.testing.assert_array_equal(np.asarray(im), dithered.labels)
