"""A PNG's image data deflated by zlib-ng, a large one in pieces on several threads.

write_image has Pillow write a PNG with its data stored (compress_level 0), and
:func:`recompressed` deflates the filtered scanlines again with zlib-ng (a
faster deflate than zlib's, the same format) at the level and strategy asked. At
level 9 zlib-ng's files were 1-5% smaller than Pillow's zlib at its level 6, in
about 1.3x its time (image.PNG_LEVEL). Data longer than PIECE bytes is deflated
in pieces, each primed with the WINDOW bytes before it (so a piece's matches
reach back into the one before, as in one stream), on up to n_threads threads
(zlib-ng releases the GIL). The pieces depend only on the image, so the file is
the same for any number of threads; every chunk but the image data is Pillow's
as written. A small palette's indices may also be given: their rows unfiltered,
deflated with the default strategy, replace Pillow's data when smaller.
16-bit colour, which Pillow does not write, is filtered and deflated here
(:func:`sixteen_bit`) around the metadata chunks Pillow wrote for a 1 x 1 image.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

#: Bytes of filtered scanlines per piece (a deflate stream restarts its block at each)
PIECE = 1 << 18
#: Deflate's window: what a piece is primed with
WINDOW = 1 << 15
#: Bytes of image data per IDAT chunk written
IDAT_BYTES = 1 << 20
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk of a PNG written by Pillow."""
    if not png.startswith(SIGNATURE):
        raise ValueError("not a PNG")
    chunks, at = [], len(SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        chunks.append((png[at + 4:at + 8], png[at + 8:at + 8 + length]))
        at += 12 + length
    return chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _idat_chunks(data: bytes) -> list[bytes]:
    """A zlib stream of image data as IDAT chunks of IDAT_BYTES at most."""
    return [_chunk(b"IDAT", data[at:at + IDAT_BYTES]) for at in range(0, len(data), IDAT_BYTES)]


class Scanlines:
    """The scanlines of (H, W) uint8 palette indices, each behind filter type None, as
    :func:`deflated` reads them: a span at a time, never all at once (at 24 MP the
    whole copy is 23 MiB)."""

    def __init__(self, indices: np.ndarray):
        self.indices = indices
        self.row = indices.shape[1] + 1  # the filter byte, then the row

    def __len__(self) -> int:
        return self.indices.shape[0] * self.row

    def __getitem__(self, span: slice) -> memoryview:
        start, stop, _ = span.indices(len(self))
        first, end = start // self.row, -(-stop // self.row)
        rows = _unfiltered_rows(self.indices[first:end], 8).reshape(-1)
        return rows[start - first * self.row:stop - first * self.row].data


def _adler32(raw: bytes | memoryview | Scanlines) -> int:
    """zlib's Adler-32 checksum of ``raw``, a PIECE at a time."""
    value = 1
    for start in range(0, len(raw), PIECE):
        value = zlib.adler32(raw[start:start + PIECE], value)
    return value & 0xFFFFFFFF


def deflated(raw: bytes | memoryview | Scanlines, level: int, strategy: int,
             n_threads: int) -> bytes:
    """A zlib stream of ``raw`` made by zlib-ng, its deflate data made piece by piece
    (PIECE bytes, each primed with the WINDOW bytes before it) on up to ``n_threads``
    threads. ``strategy`` is one of zlib's (Z_DEFAULT_STRATEGY, Z_RLE, ...)."""
    from zlib_ng import zlib_ng  # when a PNG is written, not at import
    if not isinstance(raw, Scanlines):
        raw = memoryview(raw)  # slices without copies

    def piece(start: int) -> bytes:
        end = min(start + PIECE, len(raw))
        primed = start - WINDOW if start > WINDOW else 0
        span = raw[primed:end]  # the window before the piece, then the piece: one read
        options = {"zdict": span[:start - primed]} if start else {}
        deflate = zlib_ng.compressobj(level, zlib_ng.DEFLATED, -15, 8, strategy, **options)
        last = end == len(raw)
        return deflate.compress(span[start - primed:]) + deflate.flush(
            zlib_ng.Z_FINISH if last else zlib_ng.Z_SYNC_FLUSH)  # a sync flush ends on a byte
    starts = range(0, max(len(raw), 1), PIECE)
    if len(starts) == 1 or n_threads == 1:
        body = b"".join(map(piece, starts))
    else:
        from concurrent.futures import ThreadPoolExecutor  # a large image's cost only
        with ThreadPoolExecutor(min(n_threads, len(starts))) as pool:
            body = b"".join(pool.map(piece, starts))
    header = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 15, 8, strategy).flush()[:2]
    return header + body + struct.pack(">I", _adler32(raw))


def _unfiltered_rows(indices: np.ndarray, bit_depth: int) -> np.ndarray:
    """(H, 1 + row bytes) uint8: the scanlines of (H, W) palette indices packed at
    ``bit_depth`` (1, 2, 4 or 8 bits, the leftmost pixel in the high bits, rows
    padded to a byte), each behind filter type 0 (None)."""
    height, width = indices.shape
    per_byte = 8 // bit_depth
    out = np.zeros((height, 1 + -(-width // per_byte)), dtype=np.uint8)
    if per_byte == 1:  # the indices as they are
        out[:, 1:] = indices
        return out
    rows = np.zeros((height, (out.shape[1] - 1) * per_byte), dtype=np.uint8)
    rows[:, :width] = indices
    rows = rows.reshape(height, -1, per_byte)
    packed = out[:, 1:]
    for i in range(per_byte):
        packed |= rows[:, :, i] << np.uint8(8 - bit_depth * (i + 1))
    return out


def unfiltered_indices(indices: np.ndarray, bit_depth: int) -> bytes:
    """The scanlines of :func:`_unfiltered_rows`, as bytes."""
    return _unfiltered_rows(indices, bit_depth).tobytes()


def _idat_span(kinds: list[bytes]) -> tuple[int, int] | None:
    """The indices of a PNG's first and last IDAT chunk among its chunks' types."""
    if b"IDAT" not in kinds:
        return None
    return kinds.index(b"IDAT"), len(kinds) - 1 - kinds[::-1].index(b"IDAT")


def _spliced(chunks: list[tuple[bytes, bytes]], span: tuple[int, int], data: bytes,
             header: bytes | None = None) -> bytes:
    """A PNG of ``chunks`` with the IDAT chunks of ``span`` replaced by ``data`` (a
    zlib stream), and its IHDR's data by ``header`` when given."""
    first, last = span
    before = chunks[:first] if header is None else [(b"IHDR", header), *chunks[1:first]]
    return b"".join([SIGNATURE, *(_chunk(k, d) for k, d in before), *_idat_chunks(data),
                     *(_chunk(k, d) for k, d in chunks[last + 1:])])


def recompressed(stored: bytes, level: int, strategy: int, n_threads: int,
                 unfiltered: tuple[np.ndarray, int] | None = None) -> bytes:
    """The PNG ``stored`` (written with compress_level 0) with its image data deflated
    at ``level`` and ``strategy`` (:func:`deflated`); every other chunk as it was.
    With ``unfiltered`` = (the (H, W) palette indices of a non-interlaced indexed
    PNG, a level), their rows unfiltered, deflated at that level with the default
    strategy, are written instead when that is smaller (Pillow filters each row,
    which suits some images and not others)."""
    chunks = _chunks(stored)
    span = _idat_span([kind for kind, _ in chunks])
    if span is None:
        raise ValueError("a PNG without image data")
    first, last = span
    data = deflated(zlib.decompress(b"".join(d for _, d in chunks[first:last + 1])), level,
                    strategy, n_threads)
    if unfiltered is not None:
        indices, other_level = unfiltered
        width, height, bit_depth, color_type, _, _, interlace = struct.unpack(
            ">IIBBBBB", chunks[0][1])
        if (color_type, interlace) != (3, 0) or indices.shape != (height, width):
            raise ValueError("indices must be those of the non-interlaced indexed PNG")
        other = deflated(unfiltered_indices(indices, bit_depth), other_level,
                         zlib.Z_DEFAULT_STRATEGY, n_threads)
        data = min(data, other, key=len)
    return _spliced(chunks, span, data)


def indexed(carrier: bytes, indices: np.ndarray, level: int, strategy: int,
            n_threads: int) -> bytes | None:
    """The 8-bit indexed PNG of ``indices`` (H, W) that Pillow writes (every row behind
    filter type None), its image data made here straight from the indices: without
    Pillow's stored copy of the data, its parsing and its decompression (about 100 MB
    less at 24 MP, and their time). Every other chunk comes from ``carrier``, a PNG
    Pillow wrote of a 1 x 1 image with the same palette, transparency and metadata.
    None when the carrier is not an 8-bit, non-interlaced indexed PNG."""
    chunks = _chunks(carrier)
    span = _idat_span([kind for kind, _ in chunks])
    bit_depth, color_type, _, _, interlace = struct.unpack(">BBBBB", chunks[0][1][8:13])
    if span is None or (chunks[0][0], bit_depth, color_type, interlace) != (
            b"IHDR", 8, 3, 0):
        return None
    height, width = indices.shape
    data = deflated(Scanlines(indices), level, strategy, n_threads)
    return _spliced(chunks, span, data, struct.pack(">II", width, height) + chunks[0][1][8:])


#: Rows filtered at once by :func:`filtered_rows` (bounds its scratch on a large image)
FILTER_BAND = 256
#: PNG colour types of 16-bit images by channel count: grey + alpha, RGB, RGBA
SIXTEEN_BIT_COLOR_TYPES = {2: 4, 3: 2, 4: 6}


def _paeth(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    """The Paeth predictor, byte by byte (PNG specification, section 9.4)."""
    a, b, c = (v.astype(np.int16) for v in (left, up, up_left))
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)


def filtered_rows(rows: np.ndarray, bpp: int) -> bytes:
    """The scanlines of (H, L) bytes (``bpp`` bytes a pixel), each behind the filter
    type of the five that gives the least sum of its bytes taken as signed (libpng's
    heuristic for truecolour), FILTER_BAND rows at a time."""
    height, length = rows.shape
    out = np.empty((height, length + 1), dtype=np.uint8)
    above = np.zeros(length, dtype=np.uint8)
    for start in range(0, height, FILTER_BAND):
        x = rows[start:start + FILTER_BAND]
        up = np.vstack([above, x[:-1]])
        left = np.zeros_like(x)
        left[:, bpp:] = x[:, :-bpp]
        up_left = np.zeros_like(x)
        up_left[:, bpp:] = up[:, :-bpp]
        average = ((left.astype(np.uint16) + up) >> 1).astype(np.uint8)
        candidates = np.stack([x, x - left, x - up, x - average,
                               x - _paeth(left, up, up_left)])  # uint8: modulo 256
        cost = np.minimum(candidates, 256 - candidates.astype(np.uint16)).sum(
            axis=2, dtype=np.int64)  # each byte as signed, in absolute value
        best = cost.argmin(axis=0)
        band = out[start:start + len(x)]
        band[:, 0] = best
        band[:, 1:] = candidates[best, np.arange(len(x))]
        above = x[-1]
    return out.tobytes()


def sixteen_bit(carrier: bytes, pixels: np.ndarray, level: int, n_threads: int) -> bytes:
    """A 16-bit grey + alpha, RGB or RGBA PNG of ``pixels`` (H, W, 2-4) uint16, which
    Pillow cannot write: the header and image data made here, every other chunk
    (ICC profile, text, EXIF, resolution) taken from ``carrier``, a PNG Pillow wrote
    of any image of the same mode with the metadata wanted."""
    height, width, channels = pixels.shape
    chunks = _chunks(carrier)
    kept = [(k, d) for k, d in chunks if k not in (b"IHDR", b"IDAT", b"IEND", b"sBIT")]
    header = struct.pack(">IIBBBBB", width, height, 16, SIXTEEN_BIT_COLOR_TYPES[channels],
                         0, 0, 0)
    rows = np.ascontiguousarray(pixels, dtype=">u2").view(np.uint8).reshape(height, -1)
    data = deflated(filtered_rows(rows, 2 * channels), level, zlib.Z_DEFAULT_STRATEGY,
                    n_threads)
    return b"".join([SIGNATURE, _chunk(b"IHDR", header), *(_chunk(k, d) for k, d in kept),
                     *_idat_chunks(data), _chunk(b"IEND", b"")])
