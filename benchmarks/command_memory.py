"""Peak memory of the main job file to file, beside pngquant, on large photos.

The coffee photo upscaled (bicubic) to 6 and 24 MP, written as a PNG, then

    emcore segment IN -k K -o OUT.png --quiet        pngquant --nofs K -o OUT.png IN

each as a new process on all cores, its peak resident set size read by GNU time
(``/usr/bin/time -f %M``: the whole process, interpreter and libraries included),
and each result checked to decode to at most K colours, with its PSNR and bytes.

    python benchmarks/command_memory.py [--scales 5,10] [--colors 32,256]
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
from main_job import commands, psnr  # noqa: E402


def peak_mib(cmd: list[str], env: dict, cwd: str) -> float:
    """The peak RSS of ``cmd`` in MiB, from GNU time."""
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=True)
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="5,10", help="coffee's upscale factors")
    parser.add_argument("--colors", default="32,256")
    args = parser.parse_args()
    if not os.path.exists("/usr/bin/time") or shutil.which("pngquant") is None:
        sys.exit("needs GNU time (/usr/bin/time) and pngquant")
    print("| photo | K | command | peak RSS | PSNR | bytes |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for scale in (int(s) for s in args.scales.split(",")):
            photo = load_photo("coffee", scale)
            source = os.path.join(tmp, "coffee.png")
            Image.fromarray(photo).save(source, compress_level=1)
            size = f"coffee {photo.shape[1]}x{photo.shape[0]}"
            for k in (int(k) for k in args.colors.split(",")):
                out = os.path.join(tmp, "out.png")
                runs = commands(source, out, k)
                for label in ("emcore, all cores", "pngquant, all cores"):
                    cmd, env = runs[label]
                    mib = peak_mib(cmd, env, tmp)
                    with Image.open(out) as im:
                        assert im.mode == "P" and len(im.getpalette()) <= 3 * k
                        db = psnr(photo, np.asarray(im.convert("RGB")))
                    print(f"| {size} | {k} | {label.split(',')[0]} | {mib:.0f} MiB | "
                          f"{db:.2f} dB | {os.path.getsize(out):,} |", flush=True)


if __name__ == "__main__":
    main()
