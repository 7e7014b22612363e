"""Many small files: one ``emcore segment`` command beside ``pngquant`` on the same files.

100 PNGs (crops of the bundled photographs, 160 x 120 to 320 x 240) are
quantized to 256 colours, undithered, into an empty folder, by

    emcore segment FILES... -o DIR --ext .png          (one command, files in parallel)
    pngquant --nofs --ext .png --force 256 FILES...    (files one at a time)

Both sides are timed as whole commands (start-up included, paid once), best of
--repeat runs; files per second, and each result checked to decode to at most
256 colours. Equal threads on both sides: emcore with --threads 1 beside one
pngquant with OMP_NUM_THREADS=1, and emcore on all cores beside as many pngquant
processes of one thread each, the files dealt out among them (pngquant's fastest
way through a batch), and beside one pngquant on all cores (its own default:
Debian builds libimagequant with OpenMP).

On all cores emcore runs the files in worker processes (Linux); ``--pools`` also
times the same command with its files on threads (``--debug`` keeps them there),
the two in turn round after round, and compares the results byte for byte.
``--gil-share`` measures, in this process on one thread, how much of a file's time
is Python holding the interpreter's lock: timers around every call into emcore's
kernels, libspng's decode and zlib-ng's deflate (which release it), the rest
counted as holding it, the limit of a pool of threads whatever the cores.

    python benchmarks/batch.py [--files 100] [--repeat 3] [--pools] [--gil-share]
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
    """Best time of one command (its files left in ``out``)."""
    return _files_in_turn({"": command}, out, repeat)[""]


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


def _files_in_turn(commands: dict[str, list[str]], out: str, repeat: int) -> dict[str, float]:
    """Best time of each command, the commands run in turn round after round (so that a
    change in the shared machine's load hits each alike); their outputs must be equal."""
    best = dict.fromkeys(commands, float("inf"))
    written = {}
    for _ in range(repeat):
        for name, command in commands.items():
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            start = time.perf_counter()
            # from the output's folder: "-m emcore" in the repository's root would find
            # its source folder, not the installed package
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                           cwd=os.path.dirname(out.rstrip(os.sep)))
            best[name] = min(best[name], time.perf_counter() - start)
            written[name] = {f: Path(out, f).read_bytes() for f in sorted(os.listdir(out))}
    first, *others = written.values()
    assert all(files == first for files in others), "the pools wrote different files"
    return best


def gil_share(files: list[str]) -> tuple[float, float]:
    """(seconds a file, of them outside the calls that release the lock): the files run
    one after another in this process, on one thread, best of 3."""
    import types

    import pyspng
    from zlib_ng import zlib_ng

    import emcore._colors
    import emcore.cli
    from emcore import _kernels
    released = [0.0]

    def timer(f):
        def timed_call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                released[0] += time.perf_counter() - start
        return timed_call

    for name in ("_kmeans", "_em", "_densities"):  # the compiled modules, through the door
        module = getattr(_kernels, name)
        setattr(_kernels, name, types.SimpleNamespace(**{
            attr: timer(value) if callable(value) and not isinstance(value, type) else value
            for attr, value in vars(module).items() if not attr.startswith("__")}))
    for attr, value in list(vars(emcore._colors).items()):
        if callable(value) and not attr.startswith("_") and not isinstance(value, type):
            setattr(emcore._colors, attr, timer(value))
    pyspng.load = timer(pyspng.load)
    make_deflate = zlib_ng.compressobj

    class TimedDeflate:
        def __init__(self, *args, **kwargs):
            self.deflate = make_deflate(*args, **kwargs)

        def compress(self, data):
            return timer(self.deflate.compress)(data)

        def flush(self, *args):
            return timer(self.deflate.flush)(*args)
    zlib_ng.compressobj = TimedDeflate
    best = (float("inf"), 0.0)
    for _ in range(3):
        with tempfile.TemporaryDirectory() as out:
            released[0] = 0.0
            start = time.perf_counter()
            emcore.cli.main(["segment", *files, "-o", out + os.sep, "--ext", ".png",
                             "--threads", "1", "--quiet"])
            wall = time.perf_counter() - start
        if wall < best[0]:
            best = (wall, released[0])
    wall, outside = best
    return wall / len(files), (wall - outside) / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pools", action="store_true")
    parser.add_argument("--gil-share", action="store_true")
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
        if args.pools:
            cmd = [sys.executable, "-m", "emcore", "segment", *files, "-o",
                   os.path.join(tmp, "pools") + os.sep, "--ext", ".png", "--quiet"]
            best = _files_in_turn({"processes": cmd, "threads": cmd + ["--debug"]},
                                  os.path.join(tmp, "pools"), args.repeat)
            rows += [(f"emcore segment, all cores, files in {pool} (in turn)", seconds)
                     for pool, seconds in best.items()]
        if shutil.which("pngquant"):
            cores = os.cpu_count() or 1
            for processes, threads in ((1, 1), (cores, 1), (1, cores)):
                seconds = _time_pngquant(src, files, os.path.join(tmp, "pngquant"),
                                         processes, threads, args.repeat)
                rows.append((f"pngquant --nofs 256 ({processes} process"
                             f"{'es' if processes > 1 else ''} x {threads} thread"
                             f"{'s' if threads > 1 else ''})", seconds))
        if args.gil_share:
            per_file, holding = gil_share(files)
            print(f"in process, one thread: {per_file * 1e3:.1f} ms a file, "
                  f"{holding * 1e3:.1f} ms of it holding the lock ({holding / per_file:.0%}): "
                  f"threads at most {per_file / holding:.1f} files at once")
    print(f"{args.files} PNGs, 256 colours, best of {args.repeat}")
    print("| command | seconds | files per second |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {args.files / seconds:.1f} |")


if __name__ == "__main__":
    main()
