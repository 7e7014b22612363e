"""Image IO, atomic writes and unique colours."""
import os

import numpy as np
import pytest
from PIL import Image as PILImage

from emcore import load_image, rgb_vector_to_image, save_image, unique_colors
from emcore._files import atomic_output

from _photos import DATA


@pytest.mark.parametrize("dtype, channels", [(np.uint8, 3), (np.uint8, 1), (np.uint16, 3),
                                             (np.float32, 3), (np.uint8, 4)])
def test_unique_colors_match_numpy_unique(coffee, dtype, channels):
    X = coffee.reshape(-1, 3)[:, :channels] if channels <= 3 else np.concatenate(
        [coffee.reshape(-1, 3), coffee.reshape(-1, 3)[:, :1] // 7], axis=1)
    X = X.astype(dtype) * (dtype(257) if dtype == np.uint16 else dtype(1))
    colors, counts, inverse = unique_colors(X)
    ref, ref_counts = np.unique(X, axis=0, return_counts=True)
    np.testing.assert_array_equal(colors, ref)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(colors[inverse], X)


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
        save_image(chelsea, path)
        assert load_image(path).shape == chelsea.shape
        return
    save_image(chelsea, path)
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
    with pytest.raises(ValueError, match=".npy"):
        save_image(img, tmp_path / "c16.png")
    assert not (tmp_path / "c16.png").exists()


def test_failed_write_keeps_the_old_file(tmp_path, chelsea, monkeypatch):
    path = tmp_path / "keep.png"
    save_image(chelsea, path)
    before = path.read_bytes()

    def broken_save(self, fp, format=None, **params):
        with open(fp, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(PILImage.Image, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_image(chelsea[::2], path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.png"]


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


def test_written_files_get_normal_permissions(tmp_path, chelsea):
    mask = os.umask(0o022)
    os.umask(mask)
    save_image(chelsea, tmp_path / "new.png")
    assert (tmp_path / "new.png").stat().st_mode & 0o777 == 0o666 & ~mask
    (tmp_path / "old.png").write_bytes(b"")
    os.chmod(tmp_path / "old.png", 0o640)
    save_image(chelsea, tmp_path / "old.png")  # replacing keeps the old file's mode
    assert (tmp_path / "old.png").stat().st_mode & 0o777 == 0o640
