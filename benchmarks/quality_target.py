"""``--quality``: colours needed for a quality target, emcore beside pngquant.

pngquant's and emcore's --quality scales differ, so the common target is the
picture pngquant delivers: for each photo and each pngquant ``--quality 0-Q``
(undithered, ``--nofs``), pngquant's output gives a PSNR and a colour count; then
``emcore segment --quality 0-Q'`` asks for the same PSNR on emcore's scale
(Q' = (PSNR - 20) / 0.3, emcore/cli/segment.py: quality_to_psnr) and the colours
of its output are counted. Target (issue 27): never more colours than pngquant.

    python benchmarks/quality_target.py
"""
from __future__ import annotations

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

PHOTOS = ("coffee", "chelsea", "astronaut")
EXTRA = ("camera", "rocket", "hubble_deep_field", "immunohistochemistry")  # scikit-image's
TARGETS = (50, 70, 85, 95)


def photos():
    for name in PHOTOS:
        yield name, load_photo(name)
    try:
        from skimage import data
    except ImportError:
        return
    for name in EXTRA:
        arr = getattr(data, name)()
        yield name, np.dstack([arr] * 3) if arr.ndim == 2 else arr[:, :, :3]


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def decoded(path):
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    return rgb, len(np.unique(rgb.reshape(-1, 3), axis=0))


def main():
    pngquant = shutil.which("pngquant")
    if pngquant is None:
        sys.exit("pngquant is a peer: apt-get install pngquant")
    folder = tempfile.mkdtemp()
    print("| photo | pngquant --quality | its colours | its PSNR | emcore colours at that PSNR "
          "| emcore PSNR |")
    print("|---|---|---|---|---|---|")
    worse = 0
    for name, rgb in photos():
        src = os.path.join(folder, f"{name}.png")
        Image.fromarray(rgb).save(src)
        for q in TARGETS:
            theirs = os.path.join(folder, f"{name}-pq{q}.png")
            subprocess.run([pngquant, "--nofs", "--force", "--quality", f"0-{q}", "--output",
                            theirs, src], check=True)
            their_rgb, their_colours = decoded(theirs)
            target = psnr(rgb, their_rgb)
            ours = os.path.join(folder, f"{name}-em{q}.png")
            level = min(100.0, max(0.0, (target - 20.0) / 0.3))
            subprocess.run([sys.executable, "-m", "emcore", "segment", src, "--nofs",
                            "--quality", f"0-{level:.4f}", "-o", ours, "--force"],
                           check=True, stdout=subprocess.DEVNULL)
            our_rgb, our_colours = decoded(ours)
            worse += our_colours > their_colours
            print(f"| {name} | 0-{q} | {their_colours} | {target:.2f} | {our_colours} | "
                  f"{psnr(rgb, our_rgb):.2f} |", flush=True)
    print(f"\nemcore needed more colours than pngquant in {worse} cases")


if __name__ == "__main__":
    main()
