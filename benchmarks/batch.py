"""Many small files: ``emcore segment`` in one process beside ``pngquant`` on the same files.

100 PNGs (crops of the bundled photographs, 160 x 120 to 320 x 240) are
quantized to 256 colours, undithered, into an empty folder, by

    emcore segment FILES... -o DIR --ext .png          (one process, files in parallel)
    pngquant --nofs --ext .png --force 256 FILES...    (files one at a time)

Both sides are timed as whole commands (start-up included, paid once), best of
--repeat runs; files per second, and each result checked to decode to at most
256 colours. Equal threads on both sides: emcore with --threads 1 beside one
pngquant with OMP_NUM_THREADS=1, and emcore on all cores beside as many pngquant
processes of one thread each, the files dealt out among them (pngquant's fastest
way through a batch), and beside one pngquant on all cores (its own default:
Debian builds libimagequant with OpenMP).

    python benchmarks/batch.py [--files 100] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import photo_crops  # noqa: E402


def make_files(folder: str, n: int) -> list[str]:
    paths = []
    for i, crop in enumerate(photo_crops(n)):
        path = os.path.join(folder, f"img{i:03d}.png")
        Image.fromarray(crop).save(path)
        paths.append(path)
    return paths


def timed(command: list[str], out: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def check(out: str, n: int) -> None:
    names = sorted(os.listdir(out))
    assert len(names) == n, (out, len(names))
    for name in names:
        with Image.open(os.path.join(out, name)) as im:
            assert im.mode == "P" and len(im.getpalette()) <= 256 * 3


def _time_pngquant(src: str, files: list[str], out: str, processes: int, threads: int,
                   repeat: int) -> float:
    """Best time of pngquant on the files, in ``processes`` processes side by side (the
    files dealt out among them) of ``threads`` OpenMP threads each (Debian's pngquant
    runs libimagequant on OpenMP: on every core unless told)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    best = float("inf")
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(src, out)  # pngquant writes beside each input
        mine = [os.path.join(out, os.path.basename(f)) for f in files]
        start = time.perf_counter()
        running = [subprocess.Popen(["pngquant", "--nofs", "--ext", "-q.png", "--force", "256",
                                     *mine[i::processes]], env=env)
                   for i in range(processes)]
        if any(p.wait() for p in running):
            raise RuntimeError("pngquant failed")
        best = min(best, time.perf_counter() - start)
    for name in os.listdir(out):
        if not name.endswith("-q.png"):
            os.unlink(os.path.join(out, name))
    check(out, len(files))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in")
        os.makedirs(src)
        files = make_files(src, args.files)
        rows = []
        for threads in ("1", str(os.cpu_count())):
            out = os.path.join(tmp, f"emcore{threads}")
            cmd = [sys.executable, "-m", "emcore", "segment", *files, "-o", out + os.sep,
                   "--ext", ".png", "--quiet", "--threads", threads]
            seconds = timed(cmd, out, args.repeat)
            check(out, args.files)
            rows.append((f"emcore segment (--threads {threads})", seconds))
        if shutil.which("pngquant"):
            cores = os.cpu_count() or 1
            for processes, threads in ((1, 1), (cores, 1), (1, cores)):
                seconds = _time_pngquant(src, files, os.path.join(tmp, "pngquant"),
                                         processes, threads, args.repeat)
                rows.append((f"pngquant --nofs 256 ({processes} process"
                             f"{'es' if processes > 1 else ''} x {threads} thread"
                             f"{'s' if threads > 1 else ''})", seconds))
    print(f"{args.files} PNGs, 256 colours, best of {args.repeat}")
    print("| command | seconds | files per second |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {args.files / seconds:.1f} |")


if __name__ == "__main__":
    main()
