"""emcore/_png.py: a PNG's image data deflated by zlib-ng, a large one in pieces on
threads."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import PngImagePlugin
from zlib_ng import zlib_ng

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
            whole = zlib_ng.compress(raw, level)
            assert len(streams[1]) <= 1.01 * len(whole) + 64


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (700, 901), (1200, 333)])
def test_scanlines_are_made_a_span_at_a_time_to_the_same_stream(shape):
    """Scanlines gives any span of the unfiltered scanlines (row edges, the whole,
    empty), and deflated of it is the stream of the scanlines made whole, on any
    number of threads (the larger shapes are several PIECEs, the pieces primed)."""
    rng = np.random.RandomState(1)
    indices = (rng.randint(0, 3, shape) + np.arange(shape[1]) // 50).astype(np.uint8)
    whole = _png.unfiltered_indices(indices, 8)
    lines = _png.Scanlines(indices)
    assert len(lines) == len(whole) == shape[0] * (shape[1] + 1)
    row = shape[1] + 1
    for start, stop in [(0, len(whole)), (0, 1), (row - 1, row + 1), (row, 3 * row),
                        (len(whole) - 1, len(whole)), (5, 5), (len(whole) // 3, len(whole))]:
        assert bytes(lines[start:stop]) == whole[start:stop], (start, stop)
    for n_threads in (1, 2):
        assert _png.deflated(lines, 9, zlib.Z_RLE, n_threads) == _png.deflated(
            whole, 9, zlib.Z_RLE, n_threads)


def _picture(height, width, n_colours, seed=0):
    rng = np.random.RandomState(seed)
    palette = rng.randint(0, 256, (n_colours, 3)).astype(np.uint8)
    # smooth regions, as a quantized photo has, so that the data compresses
    yy, xx = np.mgrid[:height, :width]
    labels = ((yy // 7 + xx // 11 + rng.randint(0, 2, (height, width))) % n_colours)
    return palette[labels], labels.astype(np.int32), palette


@pytest.mark.parametrize("n_colours", [12, 200])
@pytest.mark.parametrize("height", [1000, 40])  # pieces on threads; one piece
def test_a_png_is_the_same_file_on_any_thread_count_and_no_larger_than_pillows(
        n_colours, height):
    """The file is the same for 1, 2 and 3 threads; it decodes to the pixels, palette
    and metadata Pillow writes, with the same filtered scanlines, deflated by zlib-ng
    at PNG_LEVEL to within 1% of Pillow's own zlib at its default level (this
    synthetic picture; photographs: benchmarks/file_size.py)."""
    width = (1 << 19) // 1000 + 1
    image, labels, palette = _picture(height, width, n_colours)
    meta = {"dpi": (300, 300), "text": {"Comment": "ein Kätzchen"}}
    files = {}
    for n in (1, 2, 3):
        buf = io.BytesIO()
        write_image(buf, "PNG", image, labels=labels, palette=palette, metadata=meta,
                    n_threads=n)
        files[n] = buf.getvalue()
    assert files[1] == files[2] == files[3]
    stored = io.BytesIO()
    write_image(stored, "PNG", image, labels=labels, palette=palette, metadata=meta)
    assert stored.getvalue() == files[1]  # the default thread count too
    with PILImage.open(io.BytesIO(files[1])) as ours:
        reference = io.BytesIO()  # Pillow alone, from the same indexed image and options
        ours.save(reference, "PNG", pnginfo=_text_info(ours.text), dpi=ours.info["dpi"])
        alone = reference.getvalue()
        assert ours.mode == "P"
        np.testing.assert_array_equal(np.asarray(ours.convert("RGB")), image)
    with PILImage.open(io.BytesIO(files[1])) as ours, PILImage.open(io.BytesIO(alone)) as ref:
        assert ours.getpalette() == ref.getpalette()
        assert ours.text == ref.text and ours.info["dpi"] == ref.info["dpi"]

    def scanlines(png):
        return zlib.decompress(b"".join(d for kind, d in _png._chunks(png) if kind == b"IDAT"))
    # the same filters, the same bytes; or, for a small palette, the rows unfiltered
    # when that deflates smaller (this picture at 12 colours)
    with PILImage.open(io.BytesIO(files[1])) as ours:
        unfiltered = _png.unfiltered_indices(np.asarray(ours), 4)
    assert scanlines(files[1]) == (scanlines(alone) if n_colours > 16 else unfiltered)
    idat = {name: sum(len(d) for kind, d in _png._chunks(png) if kind == b"IDAT")
            for name, png in (("ours", files[1]), ("pillow", alone))}
    assert idat["ours"] <= 1.01 * idat["pillow"]  # on photos 1-5% smaller (file_size.py)
    kinds = [kind for kind, _ in _png._chunks(files[1])]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"pHYs" in kinds


def _text_info(text):
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_itxt(key, value)
    return info


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


def test_indexed_never_holds_the_whole_scanlines():
    """A 4 MP indexed PNG's image data is deflated from scanlines made a piece at a
    time: the write's traced peak stays under half a byte a pixel plus the pieces in
    flight (the whole scanlines would be a byte a pixel more), and it decodes back."""
    import tracemalloc
    rng = np.random.default_rng(2)
    indices = np.repeat(rng.integers(0, 50, (2000, 200)), 10, axis=1).astype(np.uint8)
    image = PILImage.fromarray(indices[:1, :1])
    image.putpalette(rng.integers(0, 256, 150).astype(np.uint8).tobytes())
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    tracemalloc.start()
    try:
        made = _png.indexed(buf.getvalue(), indices, 9, zlib.Z_RLE, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * indices.size + 2 * 2**20, peak
    with PILImage.open(io.BytesIO(made)) as back:
        np.testing.assert_array_equal(np.asarray(back), indices)


@pytest.mark.parametrize("shape", [(1, 700), (700, 1), (450, 620)])  # 620 x 450: two pieces
def test_indexed_is_the_file_pillows_whole_write_recompressed_gives(shape):
    # the image data made from the indices beside a 1 x 1 carrier, against Pillow
    # writing every pixel (its rows filtered None) and that data deflated again
    rng = np.random.default_rng(1)
    indices = rng.integers(0, 40, shape).astype(np.uint8)
    indices[: shape[0] // 2] = 3  # runs as well as noise
    palette = rng.integers(0, 256, (40, 3)).astype(np.uint8).tobytes()
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "carried")
    options = dict(compress_level=0, pnginfo=info, dpi=(300, 300),
                   transparency=bytes(range(0, 240, 6)))

    def stored(pixels):
        image = PILImage.fromarray(pixels)
        image.putpalette(palette)
        buf = io.BytesIO()
        image.save(buf, format="PNG", **options)
        return buf.getvalue()
    for threads in (1, 3):
        made = _png.indexed(stored(indices[:1, :1]), indices, 9, zlib.Z_DEFAULT_STRATEGY,
                            threads)
        assert made == _png.recompressed(stored(indices), 9, zlib.Z_DEFAULT_STRATEGY, threads)
    with PILImage.open(io.BytesIO(made)) as back:
        assert back.info["Title"] == "carried" and back.mode == "P"
        np.testing.assert_array_equal(np.asarray(back), indices)
    four_bit = PILImage.fromarray(indices[:1, :1] % 16)
    four_bit.putpalette(palette[:48])
    buf = io.BytesIO()
    four_bit.save(buf, format="PNG", compress_level=0)  # packed rows: not this writer's
    assert _png.indexed(buf.getvalue(), indices % 16, 9, zlib.Z_DEFAULT_STRATEGY, 1) is None


def _minimal_indexed_png(scanlines: bytes, width: int, height: int, bit_depth: int) -> bytes:
    """A PNG of the given scanlines, palette of 2**bit_depth greys, deflated by zlib."""
    entries = 1 << bit_depth
    palette = bytes(np.repeat(np.linspace(0, 255, entries).astype(np.uint8), 3))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 3, 0, 0, 0)
    return b"".join([_png.SIGNATURE, _png._chunk(b"IHDR", header),
                     _png._chunk(b"PLTE", palette),
                     _png._chunk(b"IDAT", zlib.compress(scanlines)), _png._chunk(b"IEND", b"")])


@pytest.mark.parametrize("bit_depth", [1, 2, 4, 8])
@pytest.mark.parametrize("width", [1, 7, 33])
def test_unfiltered_indices_decode_to_the_indices(bit_depth, width):
    """Rows packed high bits first and padded to a byte, behind filter 0: Pillow's
    decoder reads back exactly the indices."""
    indices = np.random.RandomState(width).randint(0, 1 << bit_depth, (5, width))
    png = _minimal_indexed_png(_png.unfiltered_indices(indices, bit_depth), width, 5,
                               bit_depth)
    np.testing.assert_array_equal(np.asarray(PILImage.open(io.BytesIO(png))), indices)


@pytest.mark.parametrize("k", [2, 8, 16])
def test_small_palette_png_takes_the_smaller_data_and_the_same_pixels(coffee, k):
    """The image data is the smaller of Pillow's filtered rows deflated with the
    run-length strategy and the unfiltered rows with the default one, and decodes
    to the picture."""
    from emcore import segment_image
    from emcore.image import PNG_LEVEL, UNFILTERED_LEVEL
    seg = segment_image(coffee, k, random_state=0)
    out = io.BytesIO()
    write_image(out, "PNG", seg.image, labels=seg.labels, palette=seg.palette)
    back = PILImage.open(io.BytesIO(out.getvalue()))
    np.testing.assert_array_equal(np.asarray(back.convert("RGB")), seg.image)
    indices = np.asarray(back)  # in the file's (luminance) order
    stored = io.BytesIO()
    back.save(stored, format="PNG", compress_level=0)
    idat = [b"".join(d for kind, d in _png._chunks(png) if kind == b"IDAT")
            for png in (stored.getvalue(), out.getvalue())]
    filtered = _png.deflated(zlib.decompress(idat[0]), PNG_LEVEL, zlib.Z_RLE, 1)
    bit_depth = 1 if k == 2 else 4  # PNG's packing of 2 and of 3-16 entries
    unfiltered = _png.deflated(_png.unfiltered_indices(indices, bit_depth),
                               UNFILTERED_LEVEL, zlib.Z_DEFAULT_STRATEGY, 1)
    assert idat[1] == min(filtered, unfiltered, key=len)
    with pytest.raises(ValueError, match="indices"):
        _png.recompressed(stored.getvalue(), 9, zlib.Z_RLE, 1, (indices[1:], 6))


def _textbook_filters(rows, bpp):
    """The five PNG filters of each row, byte by byte (PNG specification, 9.2-9.4)."""
    out = []
    for y, row in enumerate(rows.astype(int)):
        prior = rows[y - 1].astype(int) if y else np.zeros_like(row)
        filters = [[], [], [], [], []]
        for i, x in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            paeth = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            for kind, predicted in enumerate((0, a, b, (a + b) // 2, paeth)):
                filters[kind].append((x - predicted) % 256)
        out.append(filters)
    return out


def test_filtered_rows_pick_the_least_signed_sum_of_the_five_filters(monkeypatch):
    monkeypatch.setattr(_png, "FILTER_BAND", 3)  # rows carried across bands
    rng = np.random.RandomState(0)
    bpp = 6
    rows = np.vstack([
        rng.randint(0, 256, (2, 48)),               # noise
        np.tile(np.arange(48) * 5 % 256, (2, 1)),   # a ramp, then the same row again
        np.cumsum(rng.randint(0, 3, (3, 48)), axis=1) + 100,  # smooth along the row
        np.zeros((1, 48), dtype=int) + 128,         # flat
    ]).astype(np.uint8)
    got = np.frombuffer(_png.filtered_rows(rows, bpp), dtype=np.uint8).reshape(len(rows), -1)
    chosen = []
    for y, filters in enumerate(_textbook_filters(rows, bpp)):
        costs = [sum(min(v, 256 - v) for v in f) for f in filters]
        kind = int(np.argmin(costs))
        chosen.append(kind)
        assert got[y, 0] == kind
        np.testing.assert_array_equal(got[y, 1:], filters[kind])
    assert len(set(chosen)) >= 3  # the rows above take different filters


def test_sixteen_bit_png_round_trips_through_zlib_and_the_textbook_unfilter():
    rng = np.random.RandomState(1)
    pixels = rng.randint(0, 65536, (5, 7, 3)).astype(np.uint16)
    carrier = io.BytesIO()
    PILImage.new("RGB", (1, 1)).save(carrier, format="PNG")
    data = _png.sixteen_bit(carrier.getvalue(), pixels, 9, 1)
    chunks = _png._chunks(data)
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (7, 5, 16, 2, 0, 0, 0)
    raw = np.frombuffer(zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT")),
                        dtype=np.uint8).reshape(5, -1)
    bpp, rows = 6, []
    for y, line in enumerate(raw):
        kind, line = int(line[0]), line[1:].astype(int)
        prior = rows[-1] if rows else np.zeros(len(line), dtype=int)
        row = np.zeros(len(line), dtype=int)
        for i, v in enumerate(line):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prior[i], (prior[i - bpp] if i >= bpp else 0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            paeth = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[i] = (v + (0, a, b, (a + b) // 2, paeth)[kind]) % 256
        rows.append(row)
    decoded = np.array(rows, dtype=np.uint8).view(">u2").reshape(pixels.shape)
    np.testing.assert_array_equal(decoded, pixels)


def test_a_carrier_the_indexed_writer_does_not_take_falls_back_to_pillows_whole_write(
        monkeypatch):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 30, (64, 90)).astype(np.int32)
    palette = rng.integers(0, 256, (30, 3)).astype(np.uint8)
    image = palette[labels]

    def written():
        buf = io.BytesIO()
        write_image(buf, "PNG", image, labels=labels, palette=palette)
        return buf.getvalue()
    direct = written()
    monkeypatch.setattr(_png, "indexed", lambda *args: None)
    assert written() == direct
