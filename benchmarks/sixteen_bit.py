"""16-bit colour PNGs: emcore's 8-bit palette beside pngquant's, against the 16-bit original.

Each bundled photograph is made 16-bit by a smooth resize in float (so the low
bits carry real gradients), written with pypng, and quantized by
``emcore segment -k K`` and ``pngquant --nofs K``; PSNR is computed on each
image's own full scale (the 16-bit original / 65535 against the result / 255).

    python benchmarks/sixteen_bit.py [-k 32 256]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load_photo  # noqa: E402


def sixteen_bit(name: str) -> np.ndarray:
    photo = load_photo(name)
    h, w = photo.shape[:2]
    channels = [np.asarray(Image.fromarray(photo[..., c].astype(np.float32) / 255, "F")
                           .resize((w * 3 // 2, h * 3 // 2), Image.BICUBIC)) for c in range(3)]
    return np.rint(np.clip(np.stack(channels, -1), 0, 1) * 65535).astype(np.uint16)


def psnr16(original: np.ndarray, result8: np.ndarray) -> float:
    mse = np.mean((original / 65535.0 - result8 / 255.0) ** 2)
    return float(-10 * np.log10(mse))


def main() -> None:
    import png
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, nargs="*", default=[32, 256])
    args = parser.parse_args()
    print("| photo | k | emcore PSNR | pngquant --nofs PSNR | emcore bytes | pngquant bytes |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("coffee", "astronaut", "chelsea"):
            img = sixteen_bit(name)
            src = os.path.join(tmp, f"{name}16.png")
            with open(src, "wb") as f:
                png.Writer(img.shape[1], img.shape[0], greyscale=False, bitdepth=16).write(
                    f, img.reshape(img.shape[0], -1).tolist())
            for k in args.k:
                ours = os.path.join(tmp, f"{name}-{k}-emcore.png")
                subprocess.run([sys.executable, "-m", "emcore", "segment", src, "-k", str(k),
                                "-o", ours, "--quiet", "-f"], check=True)
                row = [psnr16(img, np.asarray(Image.open(ours).convert("RGB"))), None,
                       os.path.getsize(ours), None]
                if shutil.which("pngquant"):
                    theirs = os.path.join(tmp, f"{name}-{k}-pngquant.png")
                    subprocess.run(["pngquant", "--nofs", "--force", "--output", theirs,
                                    str(k), src], check=True)
                    row[1] = psnr16(img, np.asarray(Image.open(theirs).convert("RGB")))
                    row[3] = os.path.getsize(theirs)
                print(f"| {name} | {k} | {row[0]:.2f} | "
                      f"{'-' if row[1] is None else f'{row[1]:.2f}'} | {row[2]:,} | "
                      f"{'-' if row[3] is None else f'{row[3]:,}'} |", flush=True)


if __name__ == "__main__":
    main()
