"""emcore/_png.py: a large PNG's image data deflated in pieces on threads."""
import io
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import PngImagePlugin

from emcore import _png
from emcore.image import write_image


@pytest.mark.parametrize("strategy", [zlib.Z_DEFAULT_STRATEGY, zlib.Z_RLE])
@pytest.mark.parametrize("level", [1, 6, 9])
def test_deflated_is_the_data_for_any_thread_count(level, strategy):
    rng = np.random.RandomState(0)
    block = rng.randint(0, 6, 50_000).astype(np.uint8).tobytes()  # repeats across pieces
    for size in (0, 1, _png.PIECE - 1, _png.PIECE, _png.PIECE + 1, 3 * _png.PIECE + 7):
        raw = (block * (size // len(block) + 1))[:size]
        streams = {n: _png.deflated(raw, level, strategy, n) for n in (1, 2, 5)}
        assert streams[1] == streams[2] == streams[5]
        assert zlib.decompress(streams[1]) == raw  # header and Adler-32 checked by zlib
        if size > _png.PIECE:  # primed pieces lose next to nothing to one stream
            whole = zlib.compress(raw, level)
            assert len(streams[1]) <= 1.01 * len(whole) + 64


def _picture(height, width, n_colours, seed=0):
    rng = np.random.RandomState(seed)
    palette = rng.randint(0, 256, (n_colours, 3)).astype(np.uint8)
    # smooth regions, as a quantized photo has, so that the data compresses
    yy, xx = np.mgrid[:height, :width]
    labels = ((yy // 7 + xx // 11 + rng.randint(0, 2, (height, width))) % n_colours)
    return palette[labels], labels.astype(np.int32), palette


@pytest.mark.parametrize("n_colours", [12, 200])
def test_a_large_png_is_the_same_file_on_any_thread_count(monkeypatch, n_colours):
    height, width = 1000, _png.LARGE_PIXELS // 1000 + 1
    image, labels, palette = _picture(height, width, n_colours)
    meta = {"dpi": (300, 300), "text": {"Comment": "ein Kätzchen"}}
    files = {}
    for n in (1, 2, 3):
        buf = io.BytesIO()
        write_image(buf, "PNG", image, labels=labels, palette=palette, metadata=meta,
                    n_threads=n)
        files[n] = buf.getvalue()
    assert files[1] == files[2] == files[3]
    monkeypatch.setattr(_png, "LARGE_PIXELS", 1 << 40)  # Pillow deflating on its own
    buf = io.BytesIO()
    write_image(buf, "PNG", image, labels=labels, palette=palette, metadata=meta)
    alone = buf.getvalue()
    with PILImage.open(io.BytesIO(files[1])) as ours, PILImage.open(io.BytesIO(alone)) as ref:
        assert ours.mode == ref.mode == "P"
        np.testing.assert_array_equal(np.asarray(ours.convert("RGB")), image)
        assert ours.getpalette() == ref.getpalette()
        assert ours.text == ref.text and ours.info["dpi"] == ref.info["dpi"]

    def scanlines(png):
        return zlib.decompress(b"".join(d for kind, d in _png._chunks(png) if kind == b"IDAT"))
    assert scanlines(files[1]) == scanlines(alone)  # the same filters, the same bytes
    assert abs(len(files[1]) - len(alone)) <= 0.01 * len(alone)
    kinds = [kind for kind, _ in _png._chunks(files[1])]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"pHYs" in kinds


def test_recompressed_keeps_every_other_chunk_in_place():
    image = PILImage.fromarray(_picture(300, 400, 40)[0])
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "before")
    stored = io.BytesIO()
    image.save(stored, format="PNG", compress_level=0, pnginfo=info, dpi=(72, 72))
    out = _png.recompressed(stored.getvalue(), 6, zlib.Z_DEFAULT_STRATEGY, 2)
    assert len(out) < len(stored.getvalue()) / 2
    before = [(k, d) for k, d in _png._chunks(stored.getvalue()) if k != b"IDAT"]
    assert [(k, d) for k, d in _png._chunks(out) if k != b"IDAT"] == before
    with PILImage.open(io.BytesIO(out)) as back:
        np.testing.assert_array_equal(np.asarray(back), np.asarray(image))
    with pytest.raises(ValueError, match="not a PNG"):
        _png.recompressed(b"GIF89a", 6, zlib.Z_DEFAULT_STRATEGY, 1)
