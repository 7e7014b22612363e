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
as written.
"""
from __future__ import annotations

import struct
import zlib

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


def deflated(raw: bytes, level: int, strategy: int, n_threads: int) -> bytes:
    """A zlib stream of ``raw`` made by zlib-ng, its deflate data made piece by piece
    (PIECE bytes, each primed with the WINDOW bytes before it) on up to ``n_threads``
    threads. ``strategy`` is one of zlib's (Z_DEFAULT_STRATEGY, Z_RLE, ...)."""
    from zlib_ng import zlib_ng  # when a PNG is written, not at import

    def piece(start: int) -> bytes:
        end = min(start + PIECE, len(raw))
        options = {"zdict": raw[start - WINDOW if start > WINDOW else 0:start]} if start else {}
        deflate = zlib_ng.compressobj(level, zlib_ng.DEFLATED, -15, 8, strategy, **options)
        last = end == len(raw)
        return deflate.compress(raw[start:end]) + deflate.flush(
            zlib_ng.Z_FINISH if last else zlib_ng.Z_SYNC_FLUSH)  # a sync flush ends on a byte
    starts = range(0, max(len(raw), 1), PIECE)
    if len(starts) == 1 or n_threads == 1:
        body = b"".join(map(piece, starts))
    else:
        from concurrent.futures import ThreadPoolExecutor  # a large image's cost only
        with ThreadPoolExecutor(min(n_threads, len(starts))) as pool:
            body = b"".join(pool.map(piece, starts))
    header = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 15, 8, strategy).flush()[:2]
    return header + body + struct.pack(">I", zlib.adler32(raw) & 0xFFFFFFFF)


def recompressed(stored: bytes, level: int, strategy: int, n_threads: int) -> bytes:
    """The PNG ``stored`` (written with compress_level 0) with its image data deflated
    at ``level`` and ``strategy`` (:func:`deflated`); every other chunk as it was."""
    chunks = _chunks(stored)
    kinds = [kind for kind, _ in chunks]
    if b"IDAT" not in kinds:
        raise ValueError("a PNG without image data")
    first = kinds.index(b"IDAT")
    last = len(kinds) - 1 - kinds[::-1].index(b"IDAT")
    data = deflated(zlib.decompress(b"".join(d for _, d in chunks[first:last + 1])), level,
                    strategy, n_threads)
    return b"".join([SIGNATURE, *(_chunk(k, d) for k, d in chunks[:first]),
                     *(_chunk(b"IDAT", data[at:at + IDAT_BYTES])
                       for at in range(0, len(data), IDAT_BYTES)),
                     *(_chunk(k, d) for k, d in chunks[last + 1:])])
