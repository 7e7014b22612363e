"""The main job file to file, beside pngquant, with equal threads on both sides.

Each bundled photo upscaled to about 2 MP (coffee 2.2, astronaut 2.4, chelsea
2.2) and written as a PNG; then, in turn, round after round (so that a change in
the shared machine's load hits every command alike):

    emcore segment IN -k K -o OUT.png --threads 1      pngquant --nofs K  (OMP_NUM_THREADS=1)
    emcore segment IN -k K -o OUT.png                  pngquant --nofs K  (all cores)

Debian's pngquant runs libimagequant on OpenMP, on every core unless told. Whole
commands as new processes (interpreter, imports, read, fit, write), emcore's
bytecode compiled first as ``pip install .`` leaves it. Printed: fastest and
median of --rounds, and each result's PSNR against the input and its bytes.

    python benchmarks/main_job.py [--rounds 5] [--colors 32,256] [--photos coffee,...]
"""
from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load_photo  # noqa: E402

import emcore  # noqa: E402

UPSCALE = {"coffee": 3, "astronaut": 3, "chelsea": 4}


def commands(source: str, out: str, k: int) -> dict[str, tuple[list[str], dict]]:
    emcore_cmd = [sys.executable, "-m", "emcore", "segment", source, "-k", str(k), "-o", out,
                  "--force", "--quiet"]
    pngquant_cmd = ["pngquant", "--nofs", str(k), "--force", "-o", out, source]
    one = dict(os.environ, OMP_NUM_THREADS="1")
    return {"emcore, 1 thread": (emcore_cmd + ["--threads", "1"], dict(os.environ)),
            "pngquant, 1 thread": (pngquant_cmd, one),
            "emcore, all cores": (emcore_cmd, dict(os.environ)),
            "pngquant, all cores": (pngquant_cmd, dict(os.environ))}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--colors", default="32,256")
    parser.add_argument("--photos", default="coffee,astronaut,chelsea")
    args = parser.parse_args()
    compileall.compile_dir(os.path.dirname(emcore.__file__), quiet=1)
    print(f"{os.cpu_count()} CPUs; fastest / median of {args.rounds} rounds run in turn")
    print("| photo | K | command | fastest | median | PSNR | bytes |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.photos.split(","):
            photo = load_photo(name, UPSCALE[name])
            source = os.path.join(tmp, f"{name}.png")
            Image.fromarray(photo).save(source)
            for k in (int(k) for k in args.colors.split(",")):
                out = os.path.join(tmp, "out.png")
                runs = commands(source, out, k)
                times: dict[str, list[float]] = {label: [] for label in runs}
                results = {}
                for _ in range(args.rounds):
                    for label, (cmd, env) in runs.items():
                        start = time.perf_counter()
                        subprocess.run(cmd, check=True, env=env, cwd=tmp,
                                       stdout=subprocess.DEVNULL)
                        times[label].append(time.perf_counter() - start)
                        with Image.open(out) as im:
                            assert im.mode == "P" and len(im.getpalette()) <= 3 * k
                            results[label] = (psnr(photo, np.asarray(im.convert("RGB"))),
                                              os.path.getsize(out))
                for label, seconds in times.items():
                    db, size = results[label]
                    print(f"| {name} {photo.shape[1]}x{photo.shape[0]} | {k} | {label} | "
                          f"{1000 * min(seconds):.0f} ms | "
                          f"{1000 * statistics.median(seconds):.0f} ms | {db:.2f} dB | "
                          f"{size:,} |", flush=True)


if __name__ == "__main__":
    main()
