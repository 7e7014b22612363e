"""Bytes on disk against picture quality: emcore's files beside pngquant's over the k range.

For each photograph and number of colours k: the PSNR and bytes of
``pngquant --nofs k`` and of emcore's default (undithered) result written as
emcore writes it (zlib-ng at level 9; palettes of up to 16 entries in order of
luminance and compressed with the run-length strategy), as Pillow writes the same
palette and pixels plainly (zlib level 6), and with ``optimize=True`` (oxipng). emcore's
PSNR at pngquant's bytes is read off emcore's own PSNR-bytes curve (linear in log
bytes between the k measured), so that the two are compared at equal size.

    python benchmarks/file_size.py
    python benchmarks/file_size.py --photos coffee -k 8 16 32

Needs the bench extra (pyoxipng, scikit-image) and the ``pngquant`` command.
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import photographs, psnr  # noqa: E402

KS = [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256]


def emcore_files(img: np.ndarray, k: int) -> dict:
    from emcore import segment_image
    from emcore.image import _as_indexed, optimized_png, write_image
    seg = segment_image(img, k)
    buf = io.BytesIO()
    write_image(buf, "PNG", seg.image, labels=seg.labels, palette=seg.palette)
    plain = io.BytesIO()
    _as_indexed(seg.labels, seg.palette).save(plain, "PNG", compress_level=6)
    start = time.perf_counter()
    optimized = optimized_png(buf.getvalue())
    return {"psnr": psnr(img, seg.image), "bytes": len(buf.getvalue()),
            "plain": len(plain.getvalue()), "optimized": len(optimized),
            "optimize_ms": (time.perf_counter() - start) * 1e3}


def pngquant_file(img: np.ndarray, k: int, folder: Path) -> dict:
    src, out = folder / "in.png", folder / "out.png"
    Image.fromarray(img).save(src)
    subprocess.run(["pngquant", "--nofs", "--force", "--output", str(out), str(k), str(src)],
                   check=True)
    result = np.asarray(Image.open(out).convert("RGB"))
    return {"psnr": psnr(img, result), "bytes": out.stat().st_size}


def psnr_at(bytes_: float, curve: list[tuple[float, float]]) -> float | None:
    """PSNR at ``bytes_`` on a (bytes, psnr) curve, linear in log bytes; None outside it."""
    curve = sorted(curve)
    sizes = np.log([b for b, _ in curve])
    if not sizes[0] <= np.log(bytes_) <= sizes[-1]:
        return None
    return float(np.interp(np.log(bytes_), sizes, [p for _, p in curve]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", type=int, nargs="*", default=KS)
    parser.add_argument("--photos", nargs="*", default=None)
    args = parser.parse_args(argv)
    if shutil.which("pngquant") is None:
        sys.exit("needs the pngquant command (Debian: apt-get install pngquant)")
    print("| photo | k | pngquant dB / KB | emcore dB / KB | saved against Pillow's plain write | "
          "optimize saves (ms) | emcore dB at pngquant's bytes (margin) | "
          "the same, optimize |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, img in photographs(args.photos).items():
            ours = {k: emcore_files(img, k) for k in args.k}
            theirs = {k: pngquant_file(img, k, Path(tmp)) for k in args.k}
            plain = [(r["bytes"], r["psnr"]) for r in ours.values()]
            small = [(r["optimized"], r["psnr"]) for r in ours.values()]
            for k in args.k:
                o, t = ours[k], theirs[k]
                cells = []
                for curve in (plain, small):
                    at = psnr_at(t["bytes"], curve)
                    cells.append("outside the range" if at is None
                                 else f"{at:.2f} ({at - t['psnr']:+.2f})")
                print(f"| {name} | {k} | {t['psnr']:.2f} / {t['bytes'] / 1e3:.1f} | "
                      f"{o['psnr']:.2f} / {o['bytes'] / 1e3:.1f} | "
                      f"{1 - o['bytes'] / o['plain']:.1%} | "
                      f"{1 - o['optimized'] / o['bytes']:.1%} ({o['optimize_ms']:.0f}) | "
                      f"{cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
