"""Transparent images: emcore beside libimagequant and pngquant, undithered.

For each RGBA image of _alpha_images.py and each palette size: PSNR and mean
CIEDE2000 of the composite over black and over white against the original's,
the mean absolute alpha error, the share of opaque pixels made translucent (or
transparent), and the bytes of the indexed PNG each tool writes (emcore's own
writer; libimagequant's result saved by Pillow at the same zlib level; pngquant's
own file).

    python benchmarks/alpha_quality.py            # 32 and 256 colours
    python benchmarks/alpha_quality.py -k 64

Needs the bench extra (imagequant, scikit-image) and pngquant on the PATH for
every column; missing peers are left out.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _alpha_images import ALPHA_IMAGES  # noqa: E402
from quality import mean_ciede2000, psnr  # noqa: E402


def composite(rgba: np.ndarray, background: float) -> np.ndarray:
    """The image seen over a flat background, in float64 0..255."""
    rgba = rgba.astype(np.float64)
    a = rgba[..., 3:] / 255
    return rgba[..., :3] * a + background * (1 - a)


def scores(original: np.ndarray, result: np.ndarray, n_bytes: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, bg in (("black", 0.0), ("white", 255.0)):
        a, b = composite(original, bg), composite(result, bg)
        out[f"psnr_{name}"] = psnr(a, b)
        out[f"de_{name}"] = mean_ciede2000(a / 255, b / 255)
    out["alpha_err"] = float(np.abs(original[..., 3].astype(float) - result[..., 3]).mean())
    opaque = original[..., 3] == 255
    out["opaque_lost"] = float((result[..., 3][opaque] != 255).mean()) if opaque.any() else 0.0
    out["bytes"] = n_bytes
    return out


def run_emcore(rgba: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    from emcore import segment_image
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.png")
        segment_image(rgba, k).save(path)
        return np.asarray(Image.open(path).convert("RGBA")), os.path.getsize(path)


def run_libimagequant(rgba: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    import imagequant
    indexed = imagequant.quantize_pil_image(Image.fromarray(rgba, "RGBA"), dithering_level=0.0,
                                            max_colors=k)
    buf = io.BytesIO()
    indexed.save(buf, "PNG", compress_level=6)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGBA")), len(buf.getvalue())


def run_pngquant(rgba: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "in.png"), os.path.join(tmp, "out.png")
        Image.fromarray(rgba, "RGBA").save(src)
        subprocess.run(["pngquant", "--nofs", "--force", "--output", out, str(k), src],
                       check=True)
        return np.asarray(Image.open(out).convert("RGBA")), os.path.getsize(out)


def tools() -> dict:
    out = {"emcore": run_emcore}
    try:
        import imagequant  # noqa: F401
        out["libimagequant"] = run_libimagequant
    except ImportError:
        pass
    if shutil.which("pngquant"):
        out["pngquant --nofs"] = run_pngquant
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, nargs="*", default=[32, 256])
    args = parser.parse_args()
    print("| image | k | tool | PSNR over black | over white | CIEDE2000 black | white "
          "| alpha error | opaque made translucent | bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, make in ALPHA_IMAGES.items():
        rgba = make()
        for k in args.k:
            for tool, run in tools().items():
                result, n_bytes = run(rgba, k)
                s = scores(rgba, result, n_bytes)
                print(f"| {name} | {k} | {tool} | {s['psnr_black']:.3f} | {s['psnr_white']:.3f} "
                      f"| {s['de_black']:.3f} | {s['de_white']:.3f} | {s['alpha_err']:.3f} "
                      f"| {100 * s['opaque_lost']:.2f}% | {s['bytes']:,} |", flush=True)


if __name__ == "__main__":
    main()
