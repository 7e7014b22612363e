"""Image IO, atomic writes and unique colours."""
import contextlib
import io
import os
import sys
import warnings

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms

import emcore.image
from emcore.image import read_picture
from emcore import load_image, rgb_vector_to_image, save_image, unique_colors
from emcore._files import atomic_output

from _photos import DATA


@pytest.mark.parametrize("dtype, channels", [(np.uint8, 3), (np.uint8, 1), (np.uint16, 3),
                                             (np.float32, 3), (np.uint8, 4)])
def test_unique_colors_match_numpy_unique(coffee, dtype, channels):
    X = coffee.reshape(-1, 3)[:, :channels] if channels <= 3 else np.concatenate(
        [coffee.reshape(-1, 3), coffee.reshape(-1, 3)[:, :1] // 7], axis=1)
    X = X.astype(dtype) * (dtype(257) if dtype == np.uint16 else dtype(1))
    ref, ref_counts = np.unique(X, axis=0, return_counts=True)
    for n_threads in (1, 2, 3):  # 8-bit RGB: a bitmap per thread, then OR-ed
        colors, counts, inverse = unique_colors(X, n_threads=n_threads)
        np.testing.assert_array_equal(colors, ref)
        np.testing.assert_array_equal(counts, ref_counts)
        np.testing.assert_array_equal(colors[inverse], X)


def _z_key(color, n_bits):
    """A colour's Z-order key, bit by bit: the channels' most significant bits first."""
    key = 0
    for bit in range(n_bits - 1, -1, -1):
        for value in color:
            key = (key << 1) | ((int(value) >> bit) & 1)
    return key


@pytest.mark.parametrize("dtype, channels", [(np.uint8, 3), (np.uint16, 3), (np.uint8, 4)])
@pytest.mark.parametrize("bits", [6, 5, 1])
def test_colour_cells_are_the_runs_of_equal_top_bits(coffee, dtype, channels, bits):
    """The seeding's cells (_colors.colour_cells, no cell heavy): one cell per group of
    Z-ordered colours sharing their top bits, each group one run, its weight the
    group's and its mean the group's weighted mean (numpy, float64)."""
    from emcore import _colors
    from emcore.image import distinct_colors
    X = coffee.reshape(-1, 3) if channels == 3 else np.concatenate(
        [coffee.reshape(-1, 3), coffee.reshape(-1, 3)[:, :1] // 7], axis=1)
    X = X.astype(dtype) * (dtype(257) if dtype == np.uint16 else dtype(1))
    colors, counts = distinct_colors(X, z_order=True)[:2]
    values = colors.astype(np.float32)
    weights = counts.astype(np.float64)
    means, cell_weights = np.empty_like(values), np.empty(len(colors))
    n = _colors.colour_cells(colors, values, weights, 8 * X.itemsize - bits, np.inf, means,
                             cell_weights)
    top = colors.astype(np.int64) >> (8 * X.itemsize - bits)
    groups, first, group_of = np.unique(top, axis=0, return_index=True, return_inverse=True)
    group_of = group_of.reshape(-1)
    assert n == len(groups)
    order = np.argsort(first)  # the groups in the order their runs come
    mass = np.bincount(group_of, weights)
    np.testing.assert_array_equal(cell_weights[:n], mass[order])  # integer counts: exact
    sums = np.stack([np.bincount(group_of, weights * values[:, d].astype(np.float64))
                     for d in range(channels)], axis=1)
    np.testing.assert_allclose(means[:n], (sums / mass[:, None])[order], rtol=1e-6)
    # each group one run: its colours are consecutive
    np.testing.assert_array_equal(np.bincount(group_of), np.diff(np.append(
        np.sort(first), len(colors)))[np.argsort(order)])


@pytest.mark.parametrize("dtype, channels", [(np.uint8, 3), (np.uint16, 3), (np.uint8, 4)])
def test_distinct_colors_in_z_order(coffee, dtype, channels):
    """The same colours and counts as unique_colors, in increasing Z-order key; the
    8-bit bitmap path, the sort path and a Dask image agree, and 16-bit colours
    v * 257 come in the order of the 8-bit colours v."""
    from emcore.image import distinct_colors
    X = coffee.reshape(-1, 3) if channels == 3 else np.concatenate(
        [coffee.reshape(-1, 3), coffee.reshape(-1, 3)[:, :1] // 7], axis=1)
    X = X.astype(dtype) * (dtype(257) if dtype == np.uint16 else dtype(1))
    colors, counts, inverse = distinct_colors(X, z_order=True)
    np.testing.assert_array_equal(colors[inverse], X)
    ref, ref_counts = np.unique(X, axis=0, return_counts=True)
    order = np.lexsort(colors.T[::-1])
    np.testing.assert_array_equal(colors[order], ref)
    np.testing.assert_array_equal(counts[order], ref_counts)
    sample = colors[:: max(1, len(colors) // 2000)]
    keys = [_z_key(c, 8 * X.itemsize) for c in sample]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    if dtype == np.uint16:
        eight = distinct_colors(coffee.reshape(-1, 3), z_order=True)[0]
        np.testing.assert_array_equal(colors, eight.astype(np.uint16) * 257)
    if dtype == np.uint8 and channels == 3:
        from emcore.image import z_order_permutation
        np.testing.assert_array_equal(colors, ref[z_order_permutation(ref)])
        for got, want in zip(distinct_colors(X, z_order=True, n_threads=3),
                             (colors, counts, inverse)):
            np.testing.assert_array_equal(got, want)
    da = pytest.importorskip("dask.array")
    lazy_colors, lazy_counts, lazy_inverse = distinct_colors(da.from_array(X, chunks=(50_000, -1)),
                                                             z_order=True)
    np.testing.assert_array_equal(lazy_colors, colors)
    np.testing.assert_array_equal(lazy_counts, counts)
    np.testing.assert_array_equal(lazy_inverse.compute(), inverse)


def test_unique_rgb8_at_the_edges_of_the_code_bitmap():
    """Codes at the first and last bit of a 64-bit word, of a summary word (64 words)
    and of the whole 24-bit range, dense runs of neighbouring codes, and random ones,
    against numpy.unique; then a few colours after many, in the same thread's reused
    scratch: nothing of the earlier image is left in it."""
    rng = np.random.RandomState(0)
    codes = np.concatenate([[0, 63, 64, 127, 4095, 4096, 2**24 - 4096, 2**24 - 64, 2**24 - 1],
                            np.arange(5000, 5300), rng.randint(0, 2**24, 20_000)])
    codes = codes[rng.randint(0, len(codes), 100_000)]
    few = np.array([[7, 7, 7], [7, 7, 7], [200, 3, 90]], dtype=np.uint8)

    def as_pixels(codes):
        return np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    for n_threads in (1, 4):
        for X in (as_pixels(codes), few):
            ref, ref_inverse, ref_counts = np.unique(X, axis=0, return_inverse=True,
                                                     return_counts=True)
            colors, counts, inverse = unique_colors(X, n_threads=n_threads)
            np.testing.assert_array_equal(colors, ref)
            np.testing.assert_array_equal(counts, ref_counts)
            np.testing.assert_array_equal(inverse, ref_inverse.ravel())


def test_rgb8_labels_are_a_table_taken_by_each_pixels_colour_index():
    """rgb8_colors keeps a bitmap of the colours' codes instead of each pixel's index;
    rgb8_labels gives table[index] from it, against numpy.unique's inverse in Z-order
    (distinct_colors), for uint8 and int32 tables and any number of threads, and
    refuses pixels whose colours are no longer those counted."""
    from emcore.image import distinct_colors, rgb8_colors, rgb8_labels
    rng = np.random.RandomState(1)
    codes = np.concatenate([[0, 63, 64, 2**24 - 1], rng.randint(0, 2**24, 3000),
                            np.arange(70_000, 70_400)])
    codes = codes[rng.randint(0, len(codes), 60_000)]
    X = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    n_distinct = len(np.unique(X, axis=0))
    colors, counts, inverse = distinct_colors(X, z_order=True)
    np.testing.assert_array_equal(colors[inverse], X)
    for n_threads in (1, 3):
        got_colors, got_counts, bitmap = rgb8_colors(X, n_threads)
        np.testing.assert_array_equal(got_colors, colors)
        np.testing.assert_array_equal(got_counts, counts)
        assert bitmap.nbytes == 2**21  # 2 MiB whatever the pixels (the inverse: 4 a pixel)
        for dtype in (np.uint8, np.int32):
            table = rng.randint(0, 200, len(colors)).astype(dtype)
            labels = rgb8_labels(X, bitmap, table, n_threads)
            assert labels.dtype == dtype
            np.testing.assert_array_equal(labels, table[inverse])
        # the identity table gives the index itself: each pixel's own colour
        index = rgb8_labels(X, bitmap, np.arange(len(colors), dtype=np.int32), n_threads)
        np.testing.assert_array_equal(colors[index], X)
        assert len(np.unique(index)) == len(colors) == n_distinct
    changed = X.copy()
    changed[5] = 255 - changed[5]  # a colour not among those counted
    if (changed[5] == X).all(axis=1).any():  # pragma: no cover - never for this seed
        changed[5] = [1, 2, 3]
    with pytest.raises(ValueError, match="colours that present does not mark"):
        rgb8_labels(changed, bitmap, np.zeros(len(colors), np.uint8))


def test_unique_rgb8_counts_the_documented_photo_facts(coffee, chelsea):
    assert len(unique_colors(coffee.reshape(-1, 3))[0]) == 94_478
    assert len(unique_colors(chelsea.reshape(-1, 3))[0]) == 32_584


def test_load_image_and_back(tmp_path):
    img = load_image(DATA / "chelsea.png")
    assert img.title == "chelsea.png" and img.rgb_matrix.dtype == np.uint8
    back = rgb_vector_to_image(img.rgb_vector, img.shape)
    np.testing.assert_array_equal(back.rgb_matrix, img.rgb_matrix)
    with pytest.raises(ValueError, match="cannot form an image"):
        rgb_vector_to_image(img.rgb_vector, (10, 10, 3))


@pytest.mark.parametrize("ext", [".png", ".tif", ".bmp", ".webp"])
def test_save_image_round_trips_losslessly(tmp_path, chelsea, ext):
    path = tmp_path / f"out{ext}"
    if ext == ".webp":
        PILImage.init()
        if ".webp" not in PILImage.EXTENSION:
            pytest.skip("this Pillow build has no WebP support")
    save_image(chelsea, path)  # WebP too: written lossless (image.WEBP_OPTIONS)
    np.testing.assert_array_equal(load_image(path).rgb_matrix, chelsea)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


def test_sixteen_bit_grayscale_round_trip(tmp_path):
    img = (np.arange(64 * 48).reshape(48, 64) * 21).astype(np.uint16)
    save_image(img, tmp_path / "g16.png")
    np.testing.assert_array_equal(load_image(tmp_path / "g16.png").rgb_matrix, img)


def test_npy_output_for_sixteen_bit_colour(tmp_path):
    img = np.random.RandomState(0).randint(0, 65536, (8, 9, 3)).astype(np.uint16)
    save_image(img, tmp_path / "c16.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "c16.npy"), img)
    with pytest.raises(ValueError, match=".npy"):  # Pillow's TIFF holds 16-bit grey only
        save_image(img, tmp_path / "c16.tif")
    assert not (tmp_path / "c16.tif").exists()


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_sixteen_bit_colour_png_written_at_full_depth(tmp_path, channels, chelsea):
    png = pytest.importorskip("png")  # pypng: an independent decoder
    rng = np.random.RandomState(channels)
    photo = chelsea[:70, :90].astype(np.uint16) * 257  # smooth rows and noisy low bits,
    photo += rng.randint(0, 257, photo.shape).astype(np.uint16)  # so filters differ
    img = np.dstack([photo, rng.randint(0, 65536, photo.shape[:2])]).astype(np.uint16)
    img = img[:, :, {2: [0, 3], 3: [0, 1, 2], 4: [0, 1, 2, 3]}[channels]]
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    save_image(img, tmp_path / "c16.png", icc_profile=icc)
    width, height, rows, info = png.Reader(filename=str(tmp_path / "c16.png")).asDirect()
    assert info["bitdepth"] == 16 and info["planes"] == channels
    decoded = np.array([np.asarray(row) for row in rows]).reshape(img.shape)
    np.testing.assert_array_equal(decoded, img)
    np.testing.assert_array_equal(read_picture(tmp_path / "c16.png").pixels, img)
    with PILImage.open(tmp_path / "c16.png") as im:
        assert im.info.get("icc_profile") == icc


@pytest.mark.parametrize("name", ["keep.png", "keep.bmp"])
def test_failed_write_keeps_the_old_file(tmp_path, chelsea, monkeypatch, name):
    """A write interrupted after part of the file is out leaves the old file as it was
    and no temporary file: a PNG fails in emcore's own write of its bytes (its data is
    deflated in memory first), a BMP in Pillow's."""
    path = tmp_path / name
    save_image(chelsea, path)
    before = path.read_bytes()

    def partial(file):
        if isinstance(file, (str, os.PathLike)):
            with open(file, "wb") as f:
                f.write(b"partial")
        else:
            file.write(b"partial")
        raise KeyboardInterrupt

    if name.endswith(".png"):
        monkeypatch.setattr(emcore.image, "_write_bytes", lambda file, data: partial(file))
    else:
        monkeypatch.setattr(PILImage.Image, "save",
                            lambda self, fp, format=None, **params: partial(fp))
    with pytest.raises(KeyboardInterrupt):
        save_image(chelsea[::2], path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [name]


def test_atomic_output_into_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_output(tmp_path / "nope" / "x.png"):
            pass


@pytest.mark.parametrize("make, error, message", [
    (lambda p: None, FileNotFoundError, "no such file"),
    (lambda p: p.write_text("not an image"), OSError, "not an image file"),
    (lambda p: p.write_bytes((DATA / "chelsea.png").read_bytes()[:5000]), OSError,
     "could not be read"),
])
def test_unreadable_files(tmp_path, make, error, message):
    path = tmp_path / "in.png"
    make(path)
    with pytest.raises(error, match=message):
        load_image(path)


def test_decompression_bomb_limit_is_kept(monkeypatch):
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match="too large"):
        load_image(DATA / "chelsea.png")


def test_unknown_extension(tmp_path, chelsea):
    with pytest.raises(ValueError, match="extension"):
        save_image(chelsea, tmp_path / "out.xyz")
    assert os.listdir(tmp_path) == []


def _quantized(chelsea, channels):
    """A small quantized image of 1-4 channels (alpha: a transparent band and a
    translucent one) and its segmentation."""
    rgb = chelsea[:40, :60]
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:8], alpha[8:16] = 0, 128
    arr = {1: rgb[..., 0], 2: np.dstack([rgb[..., 0], alpha]), 3: rgb,
           4: np.dstack([rgb, alpha])}[channels]
    return emcore.segment_image(arr, 6)


def _read_back(path, channels):
    with PILImage.open(path) as im:
        return np.asarray(im.convert({1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]))


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("ext", [".png", ".gif", ".tif", ".bmp", ".webp", ".tga", ".jp2",
                                 ".ppm"])
def test_every_lossless_output_format_holds_the_picture(tmp_path, chelsea, ext, channels):
    """Pixel for pixel; a format without alpha (BMP, PPM) holds the colours, with a
    warning, and is still indexed where the format has palettes."""
    fmt = emcore.image.image_format("x" + ext)
    if channels in (2, 4) and fmt == "GIF":
        pytest.skip("GIF has one transparent index, no translucency (test_transparency.py)")
    seg = _quantized(chelsea, channels)
    dropped = channels in (2, 4) and fmt in emcore.image.NO_ALPHA_FORMATS
    with pytest.warns(UserWarning, match="no alpha channel") if dropped else _no_warning():
        save_image(seg.image, tmp_path / f"q{ext}", labels=seg.labels, palette=seg.palette)
    expected = seg.image[..., :-1] if dropped else seg.image
    back = _read_back(tmp_path / f"q{ext}", channels - dropped)
    np.testing.assert_array_equal(back.reshape(expected.shape), expected)
    if fmt in ("PNG", "BMP") and (fmt == "PNG" or channels != 2):
        with PILImage.open(tmp_path / f"q{ext}") as im:
            assert im.mode == "P"


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("ext, why", [(".ico", "resizes"), (".icns", "resizes"),
                                      (".pdf", "document"), (".xbm", "1 bit"),
                                      (".pcx", "")])
def test_formats_that_would_change_the_picture_are_refused(tmp_path, chelsea, ext, why):
    with pytest.raises(ValueError, match=f"does not write .*{why}"):
        save_image(chelsea, tmp_path / f"out{ext}")
    assert os.listdir(tmp_path) == []


def test_written_files_get_normal_permissions(tmp_path, chelsea):
    mask = os.umask(0o022)
    os.umask(mask)
    save_image(chelsea, tmp_path / "new.png")
    assert (tmp_path / "new.png").stat().st_mode & 0o777 == 0o666 & ~mask
    (tmp_path / "old.png").write_bytes(b"")
    os.chmod(tmp_path / "old.png", 0o640)
    save_image(chelsea, tmp_path / "old.png")  # replacing keeps the old file's mode
    assert (tmp_path / "old.png").stat().st_mode & 0o777 == 0o640


def test_exif_orientation_is_applied(tmp_path, chelsea):
    from emcore import segment_image
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    PILImage.fromarray(chelsea).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    shown = np.asarray(PILImage.open(tmp_path / "rot.jpg").transpose(PILImage.Transpose.ROTATE_270))
    assert shown.shape == (451, 300, 3)
    seg = segment_image(tmp_path / "rot.jpg", 8)
    assert seg.image.shape == (451, 300, 3)
    assert np.abs(seg.image.astype(int) - shown).mean() < 12  # the same way up as displayed
    seg.save(tmp_path / "out.png")
    assert PILImage.open(tmp_path / "out.png").size == (300, 451)


def test_icc_profile_is_kept(tmp_path, chelsea):
    from PIL import ImageCms
    from emcore import segment_image
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    PILImage.fromarray(chelsea).save(tmp_path / "in.png", icc_profile=icc)
    segment_image(tmp_path / "in.png", 8).save(tmp_path / "out.png")
    assert PILImage.open(tmp_path / "out.png").info.get("icc_profile") == icc


def _png(path, arr, depth=16, trns=None, exif=None):
    """A PNG written byte by byte (Pillow writes no 16-bit colour): (H, W) grey,
    (H, W, 2) grey + alpha, (H, W, 3) RGB or (H, W, 4) RGBA at ``depth`` bits, with
    ``trns`` (a grey value or an RGB triple) as its tRNS colour key and ``exif`` (Pillow's
    Exif bytes) in an eXIf chunk."""
    import struct
    import zlib
    h, w = arr.shape[:2]
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[arr.shape[2] if arr.ndim == 3 else 1]
    raw = b"".join(b"\x00" + arr[y].astype(">u2" if depth == 16 else "u1").tobytes()
                   for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    extra = b"" if trns is None else chunk(b"tRNS", struct.pack(">" + "H" * np.size(trns),
                                                                *np.atleast_1d(trns)))
    if exif is not None:  # Pillow's Exif bytes start "Exif\0\0"; the chunk holds the rest
        extra += chunk(b"eXIf", exif[6:])
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
                + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_sixteen_bit_colour_files_are_read_at_full_depth_not_truncated(tmp_path):
    arr = (np.random.RandomState(0).rand(6, 5, 3) * 65535).astype(np.uint16)
    _png(tmp_path / "c16.png", arr)  # Pillow alone would give 8 bits
    np.testing.assert_array_equal(load_image(tmp_path / "c16.png").rgb_matrix, arr)
    pytest.importorskip("tifffile").imwrite(tmp_path / "c16.tif", arr)
    np.testing.assert_array_equal(load_image(tmp_path / "c16.tif").rgb_matrix, arr)


def test_sixteen_bit_pages_are_read_at_full_depth_or_refused(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")
    from emcore.frames import read_frames
    pages = np.random.RandomState(2).randint(0, 65536, (3, 6, 5, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "pages.tif", pages)  # three pages
    np.testing.assert_array_equal(np.stack(read_frames(tmp_path / "pages.tif").pixels), pages)
    monkeypatch.setitem(sys.modules, "tifffile", None)  # not installed: refused, not cut
    for read in (read_frames, load_image):
        with pytest.raises(ValueError, match="pages.tif has 16 bits") as caught:
            read(tmp_path / "pages.tif")
        assert not isinstance(caught.value, OSError)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_sixteen_bit_files_are_turned_upright_as_pillow_turns_8_bit_ones(tmp_path, orientation):
    eight = np.random.RandomState(orientation).randint(0, 256, (5, 8, 3)).astype(np.uint8)
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    PILImage.fromarray(eight).save(tmp_path / "e8.png", exif=exif.tobytes())
    upright = load_image(tmp_path / "e8.png").rgb_matrix  # Pillow's exif_transpose
    _png(tmp_path / "e16.png", eight.astype(np.uint16) * 257, exif=exif.tobytes())
    picture = read_picture(tmp_path / "e16.png")
    np.testing.assert_array_equal(picture.pixels, upright.astype(np.uint16) * 257)
    kept = PILImage.Exif()
    kept.load(picture.metadata["exif"])
    assert kept.get(0x0112, 1) == 1  # the pixels are upright now
    tifffile = pytest.importorskip("tifffile")  # a TIFF's own orientation tag
    tifffile.imwrite(tmp_path / "e16.tif", eight.astype(np.uint16) * 257,
                     extratags=[(0x0112, "H", 1, orientation, False)])
    np.testing.assert_array_equal(read_picture(tmp_path / "e16.tif").pixels,
                                  upright.astype(np.uint16) * 257)


def test_sixteen_bit_grey_and_alpha_is_read_at_full_depth(tmp_path):
    # Pillow opens it as 8-bit RGBA; libspng's own choice of format refuses it
    la = np.random.RandomState(1).randint(0, 65536, (7, 6, 2)).astype(np.uint16)
    _png(tmp_path / "la16.png", la)
    np.testing.assert_array_equal(load_image(tmp_path / "la16.png").rgb_matrix, la)


@pytest.mark.parametrize("depth, channels", [(8, 1), (8, 3), (16, 1), (16, 3)])
def test_colour_key_becomes_alpha(tmp_path, depth, channels):
    # a tRNS chunk in a grey or RGB file makes the pixels of one value transparent
    top = 2 ** depth - 1
    rng = np.random.RandomState(depth + channels)
    shape = (9, 8) if channels == 1 else (9, 8, 3)
    arr = rng.randint(0, 4, shape) * (top // 3)  # few values, so the key repeats
    key = arr[2, 3] if channels == 1 else tuple(int(v) for v in arr[2, 3])
    _png(tmp_path / "keyed.png", arr, depth, trns=key)
    hit = arr == key if channels == 1 else (arr == np.array(key)).all(axis=2)
    expected = np.dstack([arr, np.where(hit, 0, top)]).astype(np.uint8 if depth == 8
                                                               else np.uint16)
    np.testing.assert_array_equal(load_image(tmp_path / "keyed.png").rgb_matrix, expected)
    with PILImage.open(tmp_path / "keyed.png") as im:  # a PIL image the same way
        if depth == 8:
            np.testing.assert_array_equal(read_picture(im).pixels, expected)


def test_a_colour_key_no_pixel_has_leaves_the_image_opaque(tmp_path):
    arr = np.random.RandomState(3).randint(0, 100, (6, 7, 3)).astype(np.uint8)
    _png(tmp_path / "k.png", arr, 8, trns=(200, 200, 200))
    np.testing.assert_array_equal(load_image(tmp_path / "k.png").rgb_matrix, arr)


def test_corrupt_sixteen_bit_png_is_an_os_error_naming_it(tmp_path):
    _png(tmp_path / "c16.png", np.zeros((40, 30, 3), dtype=np.uint16) + 7)
    data = (tmp_path / "c16.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    with pytest.raises(OSError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_cmyk_and_lab_are_converted_to_rgb(tmp_path, chelsea):
    cmyk = PILImage.fromarray(chelsea).convert("CMYK")
    cmyk.save(tmp_path / "c.jpg", quality=95)
    img = load_image(tmp_path / "c.jpg").rgb_matrix
    assert img.shape == chelsea.shape and np.abs(img.astype(int) - chelsea).mean() < 4
    skcolor = pytest.importorskip("skimage.color")
    lab = skcolor.rgb2lab(chelsea)
    # raw LAB bytes as TIFF stores them: L scaled to 0..255, a and b as signed bytes
    enc = np.dstack([np.rint(lab[..., 0] * 255 / 100).astype(np.uint8),
                     np.rint(lab[..., 1:]).astype(np.int8).view(np.uint8)])
    lab_im = PILImage.frombytes("LAB", chelsea.shape[1::-1], enc.tobytes())
    lab_im.save(tmp_path / "l.tif")
    img = load_image(tmp_path / "l.tif").rgb_matrix
    assert img.shape == chelsea.shape  # RGB, never RGBA
    assert np.abs(img.astype(int) - chelsea).mean() < 8  # LittleCMS's D50 against D65


def test_special_files_are_refused_before_reading(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO"):
        load_image(fifo)  # would block forever if opened
    with pytest.raises(OSError, match="device"):
        load_image("/dev/zero")


def test_closed_pil_image_is_a_clear_error(chelsea):
    from emcore import segment_image
    im = PILImage.fromarray(chelsea)
    im.close()
    with pytest.raises(ValueError, match="closed"):
        segment_image(im, 3)


@pytest.mark.parametrize("k, alpha", [(6, False), (14, True), (40, False)])
def test_small_palettes_are_written_in_luminance_order_with_the_same_pixels(tmp_path, chelsea,
                                                                            k, alpha):
    from emcore import segment_image
    img = chelsea[:60, :80]
    if alpha:  # a transparent corner and a translucent band
        a = np.full(img.shape[:2], 255, np.uint8)
        a[:10, :10], a[20:25] = 0, 128
        img = np.dstack([img, a])
    seg = segment_image(img, k)
    seg.save(tmp_path / "q.png")
    with PILImage.open(tmp_path / "q.png") as im:
        assert im.mode == "P"
        decoded = np.asarray(im.convert("RGBA" if alpha else "RGB"))
        written = np.array(im.getpalette()[:3 * len(seg.palette)]).reshape(-1, 3)
    np.testing.assert_array_equal(decoded, seg.image)
    luma = written @ [0.299, 0.587, 0.114]
    if k > 16:  # kept as fitted
        np.testing.assert_array_equal(written, seg.palette[:, :3])
    elif not alpha:
        assert (np.diff(luma) >= 0).all()
    else:  # transparent, then translucent, then opaque; each by luminance
        rank = np.where(seg.palette[:, 3] == 0, 0, np.where(seg.palette[:, 3] < 255, 1, 2))
        order = np.lexsort((np.arange(len(rank)), seg.palette[:, :3] @ [0.299, 0.587, 0.114],
                            rank))
        np.testing.assert_array_equal(written, seg.palette[order, :3])


@pytest.mark.parametrize("k", [8, 64])
def test_optimize_makes_smaller_pngs_of_the_same_pixels_and_metadata(tmp_path, coffee, k):
    from emcore import segment_image
    seg = segment_image(coffee, k)
    seg.metadata = {"text": {"Title": "coffee"}, "dpi": (72, 72)}
    seg.save(tmp_path / "plain.png")
    seg.save(tmp_path / "small.png", optimize=True)
    assert (tmp_path / "small.png").stat().st_size < (tmp_path / "plain.png").stat().st_size
    with PILImage.open(tmp_path / "plain.png") as a, PILImage.open(tmp_path / "small.png") as b:
        np.testing.assert_array_equal(np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB")))
        assert b.text == {"Title": "coffee"} and round(b.info["dpi"][0]) == 72


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("interlace", [False, True])
def test_plain_pngs_read_by_libspng_equal_what_pillow_reads(tmp_path, chelsea, mode,
                                                            interlace, monkeypatch):
    import png
    from PIL import ImageCms, PngImagePlugin

    import emcore.image as image
    im = PILImage.fromarray(chelsea).convert(mode)
    path = tmp_path / "p.png"
    if interlace:  # Pillow writes no interlaced PNG: pypng does (Adam7)
        rows = np.asarray(im).reshape(im.height, -1)
        with open(path, "wb") as f:
            png.Writer(im.width, im.height, greyscale=mode in ("L", "LA"), alpha="A" in mode,
                       interlace=True, bitdepth=8).write(f, rows)
    else:
        icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        im.save(path, dpi=(150, 150), icc_profile=icc)
    assert image._plain_png(path.read_bytes())
    fast = image.read_picture(path)
    monkeypatch.setattr(image, "_fast_png", lambda source, im: None)  # Pillow's reading
    slow = image.read_picture(path)
    np.testing.assert_array_equal(fast.pixels, slow.pixels)
    assert fast.pixels.dtype == slow.pixels.dtype == np.uint8
    assert (fast.icc_profile, fast.metadata) == (slow.icc_profile, slow.metadata)
    if not interlace:
        assert round(fast.metadata["dpi"][0]) == 150
    info = PngImagePlugin.PngInfo()  # a text chunk: Pillow reads the file, text kept
    info.add_text("Title", "cat")
    im.save(path, pnginfo=info)
    assert not image._plain_png(path.read_bytes())


@pytest.mark.parametrize("bits", [2, 4])
def test_low_bit_depth_grey_pngs_read_by_libspng_are_scaled_as_pillow_does(
        tmp_path, bits, monkeypatch):
    import png

    import emcore.image as image
    levels = np.random.RandomState(bits).randint(0, 2 ** bits, (20, 30))
    path = tmp_path / "g.png"
    with open(path, "wb") as f:
        png.Writer(30, 20, greyscale=True, bitdepth=bits).write(f, levels.tolist())
    fast = image.read_picture(path).pixels
    monkeypatch.setattr(image, "_fast_png", lambda source, im: None)
    np.testing.assert_array_equal(fast, image.read_picture(path).pixels)
    np.testing.assert_array_equal(fast, levels * (255 // (2 ** bits - 1)))


def test_an_open_binary_file_is_read_as_its_path_is(tmp_path, chelsea):
    from emcore import segment_image
    path = tmp_path / "c.png"
    PILImage.fromarray(chelsea).save(path)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(read_picture(f).pixels, chelsea)
    with open(path, "rb") as f:
        seg = segment_image(f, 6)
    np.testing.assert_array_equal(seg.image, segment_image(str(path), 6).image)
    with open(path, encoding="latin-1") as f, pytest.raises(TypeError, match="binary mode"):
        read_picture(f)
    (tmp_path / "bad.png").write_bytes(path.read_bytes()[:300])  # errors name the file
    with open(tmp_path / "bad.png", "rb") as f, pytest.raises(OSError, match="bad.png"):
        read_picture(f)


def test_colour_cells_refuse_arrays_too_small_for_their_output():
    from emcore import _colors
    colors = np.arange(30, dtype=np.uint8).reshape(10, 3)
    values = colors.astype(np.float32)
    for means, cell_weights, weights in [
            (np.empty((9, 3), np.float32), np.empty(10), np.ones(10)),
            (np.empty((10, 2), np.float32), np.empty(10), np.ones(10)),
            (np.empty((10, 3), np.float32), np.empty(9), np.ones(10)),
            (np.empty((10, 3), np.float32), np.empty(10), np.ones(9))]:
        with pytest.raises(ValueError, match="a row for every colour"):
            _colors.colour_cells(colors, values, weights, 2, 1.0, means, cell_weights)


def test_count_frames_agrees_with_pillow(tmp_path, chelsea):
    """Still PNGs are told by their chunk headers (image._file_kind), the rest by
    Pillow: the same counts for a plain PNG, one with a colour profile and text before
    its data, an APNG, an animated GIF and a multi-page TIFF, by path and in memory."""
    import io

    from PIL import ImageCms, PngImagePlugin

    from emcore.image import count_frames
    frames = [PILImage.fromarray(np.roll(chelsea[:40, :50], 9 * i, axis=1)) for i in range(3)]
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "x" * 5000)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    files = {"still.png": lambda p: frames[0].save(p),
             "profile.png": lambda p: frames[0].save(p, pnginfo=info, icc_profile=profile),
             "anim.png": lambda p: frames[0].save(p, save_all=True, append_images=frames[1:]),
             "anim.gif": lambda p: frames[0].save(p, save_all=True, append_images=frames[1:]),
             "pages.tif": lambda p: frames[0].save(p, save_all=True, append_images=frames[1:])}
    for name, write in files.items():
        write(tmp_path / name)
        with PILImage.open(tmp_path / name) as im:
            expected = getattr(im, "n_frames", 1)
        assert count_frames(str(tmp_path / name)) == expected, name
        buf = io.BytesIO((tmp_path / name).read_bytes())
        assert count_frames(buf) == expected and buf.tell() == 0, name
    assert count_frames(str(tmp_path / "anim.png")) == 3


def test_npy_images_are_read_back(tmp_path, chelsea):
    """A .npy image (what emcore writes for 16-bit colour) reads back, by path and from
    memory, and the command line quantizes it; a pickled array or a header asking for
    more pixels than Pillow would decode is refused before anything is loaded."""
    import io

    from emcore.cli import main
    from emcore.image import count_frames
    deep = chelsea.astype(np.uint16) * 257
    save_image(deep, tmp_path / "deep.npy")
    np.testing.assert_array_equal(read_picture(str(tmp_path / "deep.npy")).pixels, deep)
    buf = io.BytesIO((tmp_path / "deep.npy").read_bytes())
    assert count_frames(buf) == 1
    np.testing.assert_array_equal(read_picture(buf).pixels, deep)
    assert main(["segment", str(tmp_path / "deep.npy"), "-k", "8", "-o",
                 str(tmp_path / "q.png"), "--quiet"]) == 0
    assert len(np.unique(np.asarray(PILImage.open(tmp_path / "q.png").convert("RGB"))
                         .reshape(-1, 3), axis=0)) == 8
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(OSError, match="could not be read as a .npy array"):
        read_picture(str(tmp_path / "obj.npy"))
    bomb = tmp_path / "bomb.npy"
    with open(bomb, "wb") as f:  # a sparse file: the header and 30 GB of holes
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": (100_000, 100_000, 3)})
        f.truncate(f.tell() + 100_000 * 100_000 * 3)
    with pytest.raises(ValueError, match="too large to read safely"):
        read_picture(str(bomb))


@pytest.mark.parametrize("k", [6, 40])
def test_indices_of_any_integer_type_write_the_same_file(chelsea, k):
    from emcore import segment_image
    from emcore.image import write_image
    seg = segment_image(chelsea[:60, :80], k)
    files = []
    for dtype in (np.uint8, np.int32, np.int64):
        buf = io.BytesIO()
        write_image(buf, "PNG", seg.image, labels=seg.labels.astype(dtype), palette=seg.palette)
        files.append(buf.getvalue())
    assert files[0] == files[1] == files[2]
    with PILImage.open(io.BytesIO(files[0])) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), seg.image)
