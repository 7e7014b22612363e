"""Colour and alpha fitted together: the composite coordinates, the palette's rules,
and transparent images through the pipeline and back from their files."""
import numpy as np
import pytest
from PIL import Image as PILImage

from emcore import segment_image
from emcore.transparency import (composite_coordinates, constrained_lloyd, integer_entries,
                                 integer_polish, nearest_integer_entries, straight_entries)


def _composites(rgba):
    """The pixels over black and over white (float64 textbook formula)."""
    rgba = np.asarray(rgba, dtype=np.float64)
    a = rgba[..., 3:] / 255
    return rgba[..., :3] * a, rgba[..., :3] * a + 255 * (1 - a)


def _rgba(chelsea, seed=0):
    """The photo in a feathered ellipse: opaque inside, a soft edge, clear corners."""
    h, w = chelsea.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2))
    alpha = np.rint(np.clip((1.0 - r) / 0.3, 0, 1) * 255).astype(np.uint8)
    return np.dstack([chelsea, alpha])


def test_distance_is_the_mean_composite_error_over_black_and_white():
    rng = np.random.RandomState(0)
    a, b = rng.randint(0, 256, (500, 4)), rng.randint(0, 256, (500, 4))
    over_black_a, over_white_a = _composites(a)
    over_black_b, over_white_b = _composites(b)
    textbook = (((over_black_a - over_black_b) ** 2).sum(1)
                + ((over_white_a - over_white_b) ** 2).sum(1)) / 2
    ya, yb = composite_coordinates(a[:, :3], a[:, 3], 255), composite_coordinates(
        b[:, :3], b[:, 3], 255)
    np.testing.assert_allclose(((ya - yb) ** 2).sum(1), textbook, rtol=1e-12, atol=1e-9)
    # grey + alpha: one colour channel
    ga = composite_coordinates(a[:, :1], a[:, 3], 255)
    gb = composite_coordinates(b[:, :1], b[:, 3], 255)
    grey = (((over_black_a - over_black_b)[:, 0] ** 2)
            + ((over_white_a - over_white_b)[:, 0] ** 2)) / 2
    np.testing.assert_allclose(((ga - gb) ** 2).sum(1), grey, rtol=1e-12, atol=1e-9)


def test_straight_entries_invert_the_coordinates():
    rng = np.random.RandomState(1)
    rgba = rng.randint(1, 256, (300, 4)).astype(np.float64)
    color, alpha = straight_entries(composite_coordinates(rgba[:, :3], rgba[:, 3], 255), 255)
    np.testing.assert_allclose(color, rgba[:, :3], atol=1e-9)
    np.testing.assert_allclose(alpha, rgba[:, 3], atol=1e-9)
    entries = integer_entries(composite_coordinates(rgba[:, :3], rgba[:, 3], 255),
                              np.zeros(300, bool), 255, np.uint8)
    np.testing.assert_array_equal(entries, rgba.astype(np.uint8))


def _reference_constrained_lloyd(X, w, is_opaque, centers, opaque, fixed, top, n_iter,
                                 tol=0.0):
    """The same rules in plain float64 numpy (every distance computed)."""
    centers = centers.copy()
    centers[opaque, -1] = top

    def assign():
        d = ((X[:, None, :] - centers[None]) ** 2).sum(2)
        d[np.ix_(is_opaque, ~opaque)] = np.inf
        return np.argmin(d, axis=1)
    labels = None
    for _ in range(n_iter):
        new = assign()
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        before = centers.copy()
        for j in range(len(centers)):
            if fixed[j] or not (labels == j).any():
                continue
            centers[j] = np.average(X[labels == j], axis=0, weights=w[labels == j])
        centers[opaque, -1] = top
        if ((centers - before) ** 2).sum() <= tol:
            return centers, assign()
    return centers, labels


def _constrained_fit(chelsea, step, k, max_iter, tol=0.0):
    """The feathered photo's distinct visible values (every step-th pixel) and a
    constrained fit of a transparent entry and k - 1 sampled ones:
    (values, X, w, is_opaque, start, fixed, centers, labels, opaque entries)."""
    rgba = _rgba(chelsea)[::step, ::step].reshape(-1, 4)
    rgba = rgba[rgba[:, 3] > 0]
    values, counts = np.unique(rgba, axis=0, return_counts=True)
    X = composite_coordinates(values[:, :3], values[:, 3], 255)
    w = counts.astype(np.float64)
    is_opaque = values[:, 3] == 255
    rng = np.random.RandomState(0)
    start = np.concatenate([np.zeros((1, 4)), X[rng.choice(len(X), k - 1, replace=False)]])
    start_labels = np.argmin(((X[:, None, :] - start[None]) ** 2).sum(2), 1).astype(np.int32)
    fixed = np.arange(k) == 0
    centers, labels, opaque = constrained_lloyd(X, w, is_opaque, start, start_labels, fixed,
                                                255, max_iter=max_iter, tol=tol)
    return values, X, w, is_opaque, start, fixed, centers, labels, opaque


@pytest.mark.parametrize("tol", [0.0, 1.0])
def test_constrained_lloyd_against_numpy(chelsea, tol):
    """To convergence, and stopped by k-means' rule (the centres moved by tol at most,
    then the labels of the last centres)."""
    _, X, w, is_opaque, start, fixed, centers, labels, opaque = _constrained_fit(chelsea, 3,
                                                                                 8, 50, tol)
    assert opaque.any() and not opaque[0]
    top = 255 * np.sqrt(3) / 2
    ref_centers, ref_labels = _reference_constrained_lloyd(X, w, is_opaque, start, opaque,
                                                           fixed, top, 50, tol)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(centers, ref_centers, rtol=1e-9, atol=1e-9)
    assert (centers[opaque, -1] == top).all() and (centers[0] == 0).all()
    assert opaque[labels[is_opaque]].all()  # opaque samples only on opaque entries


def test_nearest_integer_entries_against_every_integer_entry():
    """Against the exhaustive search: every colour 0..255 on every channel for each
    alpha within reach of the mean's (and 255 for opaque entries), in float64."""
    rng = np.random.RandomState(3)
    rgba = rng.uniform(0, 255, (40, 4))
    rgba[:5, 3] = rng.uniform(0, 1.5, 5)  # near transparent
    rgba[5:10, 3] = rng.uniform(253.5, 255, 5)  # near opaque
    means = composite_coordinates(rgba[:, :3], rgba[:, 3], 255)
    opaque = np.arange(40) % 7 == 0
    entries, coords = nearest_integer_entries(means, opaque, 255)
    np.testing.assert_allclose(coords, composite_coordinates(entries[:, :3], entries[:, 3],
                                                             255), rtol=0, atol=1e-9)
    colours = np.arange(256.0)
    for j in range(40):
        fitted = np.clip(means[j, -1] * 2 / np.sqrt(3), 0, 255)
        alphas = [255.0] if opaque[j] else np.unique(np.clip(np.rint(fitted) + np.arange(-2, 3),
                                                             0, 255))
        best = np.inf
        for a in alphas:
            per_channel = [((colours * a / 255 - a / 2 - means[j, i]) ** 2).min()
                           for i in range(3)]
            best = min(best, sum(per_channel) + (a * np.sqrt(3) / 2 - means[j, -1]) ** 2)
        assert ((coords[j] - means[j]) ** 2).sum() == pytest.approx(best, rel=1e-12, abs=1e-12)
        assert entries[j, 3] in alphas and (entries[j] == np.rint(entries[j])).all()


def test_integer_polish_never_raises_the_error_and_keeps_the_rules(chelsea):
    """From rounded k-means centres: the composite error (textbook formula over black
    and white) never rises, opaque pixels stay on opaque entries, the transparent
    entry stays, and every sample is on its nearest entry under those rules."""
    values, X, w, is_opaque, _, fixed, centers, _, opaque = _constrained_fit(chelsea, 2, 16, 3)
    rounded = integer_entries(centers, opaque, 255, np.float64)

    def error(palette, labels):
        over_black, over_white = _composites(values)
        entry_black, entry_white = _composites(palette[labels])
        return (w * (((over_black - entry_black) ** 2).sum(1)
                     + ((over_white - entry_white) ** 2).sum(1)) / 2).sum()

    entries = composite_coordinates(rounded[:, :3], rounded[:, 3], 255)
    d = ((X[:, None, :] - entries[None]) ** 2).sum(2)
    d[np.ix_(is_opaque, rounded[:, 3] != 255)] = np.inf
    before = error(rounded, np.argmin(d, 1))
    palette, polished = integer_polish(X, w, is_opaque, rounded, fixed, 255)
    after = error(palette, polished)
    assert after <= before * (1 + 1e-12)
    assert (palette == np.rint(palette)).all() and (palette[0] == 0).all()
    assert (palette[polished[is_opaque], 3] == 255).all()
    entries = composite_coordinates(palette[:, :3], palette[:, 3], 255)
    d = ((X[:, None, :] - entries[None]) ** 2).sum(2)
    d[np.ix_(is_opaque, palette[:, 3] != 255)] = np.inf
    np.testing.assert_allclose(d[np.arange(len(X)), polished], d.min(1), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dither", [0.0, 0.8])
@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_palette_rules_and_indexed_round_trip(chelsea, tmp_path, method, dither):
    rgba = _rgba(chelsea)
    result = segment_image(rgba, 16, method=method, dither=dither)
    assert result.palette.shape == (16, 4) and result.palette.dtype == np.uint8
    np.testing.assert_array_equal(result.image, result.palette[result.labels])
    alpha = rgba[:, :, 3]
    # every fully transparent pixel on one fully transparent entry (index 0)
    assert (result.labels[alpha == 0] == 0).all() and (result.palette[0] == 0).all()
    assert (result.image[:, :, 3][alpha == 255] == 255).all()  # opaque stays opaque
    path = tmp_path / "out.png"
    result.save(path)
    with PILImage.open(path) as im:
        assert im.mode == "P" and "transparency" in im.info
        n_trns = len(im.info["transparency"])
        decoded = np.asarray(im.convert("RGBA"))
    np.testing.assert_array_equal(decoded, result.image)  # exactly the painted pixels
    # translucent entries come first, so tRNS stops before the opaque ones
    assert n_trns == int((result.palette[:, 3] < 255).sum())


def test_the_fit_beats_k_means_on_straight_rgba(chelsea):
    """The same palette size fitted by scikit-learn in straight (R, G, B, A), where
    a colour error counts as much at alpha 1 as at 255: worse composites."""
    from sklearn.cluster import KMeans as SkKMeans
    rgba = _rgba(chelsea)
    result = segment_image(rgba, 16)
    values, inverse, counts = np.unique(rgba.reshape(-1, 4), axis=0, return_inverse=True,
                                        return_counts=True)
    naive = SkKMeans(16, n_init=3, random_state=0).fit(values.astype(np.float64),
                                                       sample_weight=counts)
    straight = np.rint(naive.cluster_centers_).astype(np.uint8)[naive.labels_][
        inverse.ravel()].reshape(rgba.shape)
    for ours, theirs, original in zip(_composites(result.image), _composites(straight),
                                      _composites(rgba)):
        assert ((ours - original) ** 2).mean() < 0.9 * ((theirs - original) ** 2).mean()


def test_grey_alpha_and_palette_with_trns(chelsea, tmp_path):
    grey = np.asarray(PILImage.fromarray(chelsea).convert("L"))
    la = np.dstack([grey, _rgba(chelsea)[:, :, 3]])
    result = segment_image(la, 8)
    assert result.image.shape == la.shape and result.palette.shape == (8, 2)
    assert (result.image[:, :, 1][la[:, :, 1] == 255] == 255).all()
    path = tmp_path / "grey.png"
    result.save(path)
    with PILImage.open(path) as im:
        assert im.mode == "P"
        decoded = np.asarray(im.convert("LA"))
    np.testing.assert_array_equal(decoded, result.image)
    # a palette PNG with a tRNS chunk is read as RGBA and fitted with its alpha
    src = tmp_path / "p.png"
    rng = np.random.RandomState(0)
    indexed = PILImage.fromarray(rng.randint(0, 40, (60, 80)).astype(np.uint8), "L")
    indexed.putpalette(rng.randint(0, 256, 40 * 3).astype(np.uint8).tobytes())
    trns = np.where(np.arange(40) < 5, 0, np.where(np.arange(40) < 15, 128, 255))
    indexed.save(src, transparency=trns.astype(np.uint8).tobytes())
    with PILImage.open(src) as im:
        original = np.asarray(im.convert("RGBA"))
    result = segment_image(str(src), 8)
    assert result.image.shape == original.shape
    assert (result.image[:, :, 3][original[:, :, 3] == 0] == 0).all()
    assert (result.image[:, :, 3][original[:, :, 3] == 255] == 255).all()


def test_gif_keeps_one_transparent_index(chelsea, tmp_path):
    rgba = _rgba(chelsea)
    rgba[:, :, 3] = np.where(rgba[:, :, 3] > 127, 255, 0)  # binary alpha: GIF holds it
    result = segment_image(rgba, 12)
    path = tmp_path / "out.gif"
    result.save(path)
    with PILImage.open(path) as im:
        assert im.info["transparency"] == 0
        decoded = np.asarray(im.convert("RGBA"))
    np.testing.assert_array_equal(decoded[:, :, 3], result.image[:, :, 3])
    shown = result.image[:, :, 3] == 255
    np.testing.assert_array_equal(decoded[shown], result.image[shown])
    with pytest.warns(UserWarning, match="no partial transparency"):
        segment_image(_rgba(chelsea), 12).save(tmp_path / "soft.gif")


def test_lossless_when_k_covers_every_value():
    rng = np.random.RandomState(3)
    values = rng.randint(0, 256, (6, 4)).astype(np.uint8)
    values[0] = (9, 9, 9, 0)
    values[1:, 3] = [255, 255, 128, 30, 1]
    img = values[rng.randint(0, 6, (20, 30))]
    result = segment_image(img, 6)
    np.testing.assert_array_equal(result.image[img[:, :, 3] > 0], img[img[:, :, 3] > 0])
    assert (result.image[img[:, :, 3] == 0] == 0).all()  # transparent: one (0, 0, 0, 0)


def test_same_result_for_any_thread_count_and_for_every_pixel(chelsea):
    rgba = _rgba(chelsea)[::2, ::2]
    results = [segment_image(rgba, 16, n_threads=n) for n in (1, 2, 3)]
    for other in results[1:]:
        np.testing.assert_array_equal(other.palette, results[0].palette)
        np.testing.assert_array_equal(other.labels, results[0].labels)
    # from the same start (k-means++ draws other samples from other rows), fitting every
    # pixel gives the picture of fitting the distinct values weighted by their counts
    start = np.ascontiguousarray(results[0].model.cluster_centers_)
    one = segment_image(rgba, 16, init=start, n_threads=2)
    every_pixel = segment_image(rgba, 16, init=start, unique_colors=False, n_threads=2)
    np.testing.assert_array_equal(every_pixel.image, one.image)


@pytest.mark.parametrize("unique_colors", [True, False])
@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_an_image_with_nothing_visible_is_one_transparent_entry(tmp_path, method,
                                                                unique_colors):
    img = np.zeros((12, 10, 4), np.uint8)
    img[:, :, 0] = np.arange(10) * 20  # colours under alpha 0: not shown, not kept
    with pytest.warns(UserWarning, match="1 distinct colours"):
        result = segment_image(img, 8, method=method, unique_colors=unique_colors)
    np.testing.assert_array_equal(result.palette, [[0, 0, 0, 0]])
    assert (result.labels == 0).all() and (result.image == 0).all()
    result.save(tmp_path / "clear.png")
    with PILImage.open(tmp_path / "clear.png") as im:
        assert im.mode == "P"
        assert (np.asarray(im.convert("RGBA")) == 0).all()
