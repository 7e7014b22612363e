"""``emcore segment``: reduce images to k colours, one file or a batch (pngquant's workflow).

Every input runs the one image pipeline (emcore/pipeline.py). Where each result
goes: ``-o FILE`` (one input), ``-o DIR`` (a folder: each input's name with
``--ext``), ``-o -`` (standard output, PNG), or beside each input with ``--ext``;
``-`` as an input reads standard input (and, without ``-o``, writes standard
output). Several inputs run in parallel (in worker processes on Linux), each with a
share of the cores; one that fails is reported and the others are still written.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import signal
import sys
import time
from dataclasses import dataclass

import numpy as np

from emcore.cli._args import (FAILURE, QUALITY_TOO_LOW, SKIPPED, STDIO, USAGE_ERROR, UsageError,
                              add_common, check_outputs, image_argument, image_format,
                              non_negative_float, non_negative_int, notice, number,
                              positive_int, progress)

#: palette size without -k (pngquant's)
DEFAULT_COLORS = 256
#: the largest palette an indexed PNG, GIF, TIFF or BMP holds
MAX_PALETTE = 256
#: suffix of an output written beside its input (or into -o DIR) without --ext
DEFAULT_EXT = "-emcore.png"
#: prctl's option that sends the calling process a signal when its parent dies (Linux),
#: and the signal a batch's worker process asks for (see _worker_start)
PR_SET_PDEATHSIG = 1
PARENT_GONE = getattr(signal, "SIGUSR1", signal.SIGTERM)
#: ``--dither`` given alone: 15/16 of Floyd-Steinberg's error passed on gave the best
#: picture after a blur of 1 and 2 pixels (viewing distance) on the photographs of
#: benchmarks/dither_quality.py, ahead of 1, 7/8 and diffusion in linear light
DITHER = 15 / 16


def quality_to_psnr(quality: float) -> float:
    """The PSNR (dB, against the original) that --quality's 0-100 scale asks for.

    Linear from 20 dB at 0 to 50 dB at 100 (a 30 dB span: 8-bit photographs reach
    about 30 dB at 8 colours, 38-40 dB at 256, and 50 dB is all but lossless).
    For an image with alpha the PSNR is that of the composite over black and white.
    """
    return 20.0 + 0.3 * float(quality)


def _quality(text):
    """'MIN-MAX' or 'MAX' on the 0-100 scale of quality_to_psnr."""
    parse = number(float, 0, "a quality from 0 to 100", maximum=100)
    low, sep, high = text.partition("-")
    try:
        values = (parse(low), parse(high)) if sep else (0.0, parse(low))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"invalid quality {text!r}: use MIN-MAX or MAX, each from 0 to 100") from None
    if values[0] > values[1]:
        raise argparse.ArgumentTypeError(f"quality {text!r}: MIN is above MAX")
    return values


def _suffix(text):
    """--ext: a name's ending, not a path (the output stays beside its input)."""
    if not text or any(sep and sep in text for sep in (os.sep, os.altsep)):
        raise argparse.ArgumentTypeError(
            f"expected a file-name suffix such as -fs8.png, got {text!r}")
    return text


def _smoothing(text):
    from emcore.spatial import MAX_BETA  # here: only --smooth needs the spatial module
    return number(float, 0, f"a smoothing strength from 0 to {MAX_BETA:g}",
                  maximum=MAX_BETA)(text)


def _dither_strength(text):
    return number(float, 0, "a dither strength from 0 to 1", maximum=1)(text)


def add_parser(sub, formatter_class):
    seg = sub.add_parser(
        "segment", help="reduce images to k colours", formatter_class=formatter_class,
        description="Fit k-means (or a Gaussian mixture) to each image's colours and write "
                    "it painted with k colours: an indexed PNG/GIF/TIFF/BMP with exactly that "
                    "palette (with alpha: an indexed PNG with a tRNS chunk).")
    seg.add_argument("inputs", nargs="+", metavar="IN",
                     help="image files; '-' reads standard input")
    seg.add_argument("-k", "--colors", "--clusters", dest="colors", type=positive_int,
                     default=None, metavar="K",
                     help=f"colours (segments), {MAX_PALETTE} at most for an indexed file "
                          f"(default: {DEFAULT_COLORS}); more than the image has keeps every "
                          "colour")
    seg.add_argument("-o", "--output", metavar="OUT",
                     help="output file (its extension gives the format: .png, .gif, .tif, "
                          ".jpg, .npy...), a folder, or '-' for standard output (default: "
                          "beside each input, named with --ext)")
    seg.add_argument("--ext", type=_suffix, default=DEFAULT_EXT, metavar="SUFFIX",
                     help="replaces the input's extension in the output's name (without -o, "
                          "or with -o DIR)")
    seg.add_argument("--quality", type=_quality, metavar="MIN-MAX",
                     help="the fewest colours (up to -k) whose result reaches MAX; below MIN "
                          "nothing is written (exit status 99). 0-100: 20 dB PSNR at 0, "
                          "50 dB at 100, linear")
    seg.add_argument("--max-bytes", type=positive_int, metavar="N",
                     help="the most colours (up to -k) whose file fits in N bytes")
    seg.add_argument("--skip-if-larger", action="store_true",
                     help="write nothing when the result is larger than the input file "
                          "(exit status 98)")
    seg.add_argument("--optimize", action="store_true",
                     help="make PNG files smaller with oxipng, the same pixels (0-21%% smaller "
                          "on 7 photos, 0.05-1.2 s each; needs emcore[optimize])")
    seg.add_argument("--strip", action="store_true",
                     help="drop the input's metadata (ICC profile, EXIF, resolution, text)")
    seg.add_argument("--method", choices=("kmeans", "gmm"), default="kmeans",
                     help="k-means (the best picture measured) or a Gaussian mixture by EM")
    seg.add_argument("--covariance", choices=("spherical", "diag", "full"), default="spherical",
                     help="mixture covariance type (gmm)")
    seg.add_argument("--color-space", choices=("rgb", "oklab"), default="rgb",
                     help="fit in sRGB or in the perceptual OKLab space")
    seg.add_argument("--dither", type=_dither_strength, nargs="?", const=DITHER, default=0.0,
                     metavar="STRENGTH",
                     help="Floyd-Steinberg error diffusion, 0 to 1 (15/16, the best measured, "
                          "when given alone)")
    seg.add_argument("--nofs", dest="dither", action="store_const", const=0.0,
                     help="no dithering (pngquant's spelling; emcore's default)")
    seg.add_argument("--frame-palettes", action="store_true",
                     help="an animation or multi-page file: a palette per frame "
                          "(default: one palette fitted to every frame's colours)")
    seg.add_argument("--smooth", type=_smoothing, default=0.0, metavar="BETA",
                     help="spatial smoothing: a Gaussian mixture under a Potts prior of this "
                          "strength (1 is a good start; 0: off), so that neighbouring pixels "
                          "share segments on noisy images; implies --method gmm")
    seg.add_argument("--repaint", choices=("segment", "component"), default="segment",
                     help="paint each segment with its pixels' mean or the model's mean")
    seg.add_argument("--rgb", action="store_true",
                     help="write RGB pixels instead of an indexed image")
    seg.add_argument("--max-iter", type=non_negative_int, default=100,
                     help="iterations at most")
    seg.add_argument("--tol", type=non_negative_float, default=None,
                     help="convergence tolerance (default: 1e-3 for gmm, 1e-4 for kmeans)")
    seg.add_argument("--n-init", type=positive_int, default=1, metavar="N",
                     help="fit from N seeds and keep the least error (slower, closer to "
                          "the best palette: README, \"How close to the optimum\")")
    seg.add_argument("--seed", type=non_negative_int, default=0, help="random seed")
    seg.add_argument("--no-unique-colors", action="store_true",
                     help="fit every pixel rather than each distinct colour weighted by count")
    seg.add_argument("--labels", metavar="FILE.npy",
                     help="also write the (H, W) label map (one input only)")
    seg.add_argument("--model", metavar="FILE.npz",
                     help="also write the fitted model (one input only)")
    seg.add_argument("--json", action="store_true", help="print each summary as a JSON line")
    add_common(seg, quiet=True)


@dataclass
class Job:
    """One input and where its result goes."""
    source: str
    destination: str


@dataclass
class Outcome:
    """What the batch reports of one job: its summary, or its error as the report line
    and exit status (a job run in another process sends these back, not the exception;
    ``error`` is kept only for a job run in a thread, for --debug)."""
    summary: dict | None = None
    message: str = ""
    status: int = 0
    refused: bool = False
    error: BaseException | None = None


class Refused(Exception):
    """A file left unwritten on purpose (--skip-if-larger, --quality), with its status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _destination(source: str, output: str | None, ext: str, n_inputs: int) -> str:
    if output == STDIO or (output is None and source == STDIO):
        if n_inputs > 1:
            raise UsageError("standard output takes one input: give -o DIR for several")
        return STDIO
    stem = "stdin" if source == STDIO else os.path.splitext(os.path.basename(source))[0]
    if output is None:
        return os.path.join(os.path.dirname(source), stem + ext)
    if os.path.isdir(output) or output.endswith(os.sep):
        return os.path.join(output, stem + ext)
    if n_inputs > 1:
        raise UsageError(f"-o {output} names one file but {n_inputs} inputs were given: "
                         "give a folder (-o DIR) or no -o")
    return output


def _plan(args) -> list[Job]:
    """Each input's job; the arguments that hold for all of them checked first."""
    if args.inputs.count(STDIO) > 1:
        raise UsageError("standard input ('-') can be read once")
    if len(args.inputs) > 1 and (args.labels or args.model):
        raise UsageError("--labels and --model take one input")
    if args.method == "kmeans" and args.max_iter < 1:
        raise UsageError("--max-iter must be at least 1 for kmeans")
    if args.output and args.output.endswith(os.sep) and not os.path.isdir(args.output):
        raise FileNotFoundError(f"cannot write into {args.output}: no such folder")
    jobs = [Job(src, _destination(src, args.output, args.ext, len(args.inputs)))
            for src in args.inputs]
    first_for: dict[str, str] = {}  # two inputs named alike into one folder: one would be lost
    for job in jobs:
        if job.destination == STDIO:
            continue
        where = os.path.realpath(job.destination)
        if where in first_for:
            raise UsageError(f"{first_for[where]} and {job.source} would both be written to "
                             f"{job.destination}: give them different --ext or folders")
        first_for[where] = job.source
    from emcore.image import PALETTE_FORMATS
    k = args.colors if args.colors is not None else DEFAULT_COLORS
    for job in jobs:
        fmt = _output_format(job.destination)
        if k > MAX_PALETTE and not args.rgb and fmt in PALETTE_FORMATS:
            raise UsageError(f"-k {k}: an indexed {fmt} holds at most {MAX_PALETTE} colours; "
                             f"add --rgb to write {k} colours as a truecolour image")
    return jobs


def _check_job_outputs(job: Job, args) -> None:
    files = [] if job.destination == STDIO else [(job.destination, None)]
    check_outputs(files + [(args.labels, [".npy"]), (args.model, [".npz"])],
                  inputs=(job.source, args.model), force=args.force)


def _output_format(destination: str) -> str:
    """The format an output is written in: PNG on standard output, else its extension's."""
    return "PNG" if destination == STDIO else image_format(destination)


def _psnr(original: np.ndarray, result) -> float:
    """PSNR in dB of ``result``, an image or a Segmentation (whose image is then painted a
    block of rows at a time), each on its own full scale (a 16-bit original beside an
    8-bit result; float images on the original's: image.float_peak); for an image with
    alpha, of the composites over black and white."""
    from emcore._estimation import weighted_sum
    from emcore.colorspace import full_scale
    from emcore.image import float_peak
    from emcore.transparency import composite_coordinates
    original = np.asarray(original)
    peak = float_peak(original) if original.dtype.kind == "f" else None

    def unit(arr):
        arr = np.asarray(arr)
        scale = peak if peak is not None and arr.dtype.kind == "f" else full_scale(arr.dtype)
        if arr.ndim == 3 and arr.shape[2] in (2, 4) and arr.dtype.kind in "ui":
            c = arr.shape[2] - 1
            return composite_coordinates(arr[..., :c].reshape(-1, c), arr[..., c].ravel(),
                                         scale) / scale, c
        return arr.astype(np.float64).reshape(arr.shape[0], -1) / scale, 1
    given_image = isinstance(result, np.ndarray)
    like = result if given_image else result.image_like()  # the image's shape and dtype
    rows_of = result.__getitem__ if given_image else result.image_rows
    if (original.dtype == like.dtype and original.dtype.kind in "ui"
            and original.shape == like.shape
            and not (original.ndim == 3 and original.shape[2] in (2, 4))):
        # the common case, exactly and without float64 copies of the images (nor the
        # repainted image itself): squared integer differences summed a block of rows
        # at a time (exact in float64 per block)
        rows = max(1, (1 << 20) // max(original[:1].size, 1))
        total = 0.0
        for start in range(0, len(original), rows):
            d = (original[start:start + rows].astype(np.float64)
                 - rows_of(slice(start, start + rows))).reshape(-1)
            total += weighted_sum(d, d)
        mse = total / max(original.size, 1) / full_scale(original.dtype) ** 2
    else:
        (a, c), (b, _) = unit(original), unit(result if given_image else result.image)
        mse = float(((a - b) ** 2).sum(axis=1).mean()) / (c if c > 1 else a.shape[1])
    return float("inf") if mse == 0 else float(-10 * np.log10(mse))


class _Quantizer:
    """One input's samples, fitted at whatever k a search asks for (each k once)."""

    def __init__(self, picture, args, n_threads, tick, frames=None):
        from emcore.pipeline import ImageSamples
        self.args, self.n_threads, self.tick = args, n_threads, tick
        def samples_of(picture, n_frames=1):
            return ImageSamples(picture, unique_colors=not (args.no_unique_colors or args.smooth),
                                color_space=args.color_space, n_threads=n_threads,
                                frames=n_frames)
        # stacked frames: --smooth couples each pixel only within its own frame
        self.samples = samples_of(picture, 1 if frames is None else len(frames.pixels))
        self.original = picture.pixels
        self.frames = frames
        self.frame_samples = None  # with --frame-palettes: each frame's own samples
        if frames is not None and args.frame_palettes:
            from emcore.image import Picture
            self.frame_samples = [samples_of(Picture(pixels, frames.icc_profile, None))
                                  for pixels in frames.pixels]
        self.fmt = _output_format(args.destination)
        self._done: dict[int, tuple] = {}
        self._psnr: dict[int, float] = {}
        self._palettes: dict[int, list] = {}  # id(result) -> each frame's palette

    def attempt(self, k: int):
        """(result, model) at k colours."""
        if k not in self._done:
            from emcore.pipeline import Segmentation, finish, fit_model
            args = self.args
            options = dict(max_iter=args.max_iter, random_state=args.seed, n_init=args.n_init,
                           n_threads=self.n_threads, callback=self.tick)
            if args.tol is not None:
                options["tol"] = args.tol
            if args.method == "gmm" or args.smooth:
                options["covariance_type"] = args.covariance
            from emcore.image import PALETTE_FORMATS
            indexed = not args.rgb and self.fmt in PALETTE_FORMATS

            def quantized(samples, k):
                model = fit_model(samples, k, args.method, args.smooth, **options)
                return finish(samples, model, repaint=args.repaint, dither=args.dither,
                              eight_bit=indexed), model

            if self.frame_samples is None:
                result, model = quantized(self.samples, k)
            else:  # a palette per frame, each of at most k colours
                parts = [quantized(s, min(k, s.n_distinct)) for s in self.frame_samples]
                first, model = parts[0]
                result = Segmentation(
                    model, np.concatenate([r.labels for r, _ in parts]), first.palette,
                    np.concatenate([r.image for r, _ in parts]), first.icc_profile,
                    first.metadata)
                self._palettes[id(result)] = [r.palette for r, _ in parts]
            if args.strip:
                result.icc_profile, result.metadata = None, None
            self._done[k] = (result, model)
        return self._done[k]

    def psnr(self, k: int) -> float:
        """The PSNR of the result at k colours (made when first asked: a quiet batch
        never asks)."""
        if k not in self._psnr:
            self._psnr[k] = _psnr(self.original, self.attempt(k)[0])
        return self._psnr[k]

    def write(self, result, file) -> None:
        """Encode a result into a path or a binary file object."""
        from emcore import image  # looked up at each call
        if self.frames is not None:  # the stacked frames back apart
            from emcore.frames import write_frames
            n = len(self.frames.pixels)
            palettes = self._palettes.get(id(result), [result.palette] * n)
            write_frames(file, self.fmt, list(np.split(result.labels, n)), palettes,
                         self.frames)
            return
        pixels, labels = result.written(self.fmt, self.args.rgb)
        image.write_image(file, self.fmt, pixels, labels=labels,
                          palette=None if self.args.rgb else result.palette,
                          icc_profile=result.icc_profile, metadata=result.metadata,
                          optimize=self.args.optimize, n_threads=self.n_threads)

    def n_bytes(self, k: int) -> int:
        """The encoded size of the result at k colours."""
        buf = io.BytesIO()
        self.write(self.attempt(k)[0], buf)
        return len(buf.getvalue())


def _fewest(lo: int, hi: int, good) -> int | None:
    """The smallest k in [lo, hi] with good(k), taking good as monotone; None if none."""
    if not good(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if good(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def _choose_k(q: _Quantizer, k_max: int, args) -> int:
    """-k, or what --quality and --max-bytes choose below it."""
    k = k_max
    if args.quality is not None:
        low, high = (quality_to_psnr(v) for v in args.quality)
        best = q.psnr(k_max)
        if best < low:
            raise Refused(f"PSNR {best:.2f} dB at {k_max} colours is below --quality's minimum "
                          f"{args.quality[0]:g} ({low:.1f} dB): nothing written",
                          QUALITY_TOO_LOW)
        k = _fewest(1, k_max, lambda n: q.psnr(n) >= high) or k_max
    if args.max_bytes is not None:
        if q.n_bytes(k) > args.max_bytes:
            too_big = _fewest(1, k, lambda n: q.n_bytes(n) > args.max_bytes)
            k = (too_big - 1) if too_big is not None else k
            if k < 1:
                raise Refused(f"even 1 colour takes {q.n_bytes(1):,} bytes, more than "
                              f"--max-bytes {args.max_bytes:,}: nothing written", FAILURE)
        if args.quality is not None and q.psnr(k) < quality_to_psnr(args.quality[0]):
            raise Refused(f"{args.max_bytes} bytes hold {k} colours, below --quality's "
                          "minimum: nothing written", QUALITY_TOO_LOW)
    return k


def _read(source: str, stdin_bytes: bytes | None):
    """(picture, frames): a still image's picture and None, or an animation's or
    multi-page file's frames stacked into one picture and the frames."""
    from emcore.frames import read_frames, stacked
    from emcore.image import count_frames, read_picture
    handle = image_argument(source, stdin_bytes or b"")
    n_frames = count_frames(handle)  # the header only
    if n_frames == 1:
        return read_picture(handle), None
    frames = read_frames(handle)
    return stacked(frames), frames


def run_job(job: Job, args, n_threads: int | None, stdin_bytes: bytes | None, tick=None) -> dict:
    """Quantize one input and write its result; the summary of what was done."""
    from emcore._files import atomic_outputs

    _check_job_outputs(job, args)
    start = time.perf_counter()
    picture, frames = _read(job.source, stdin_bytes)
    from emcore.image import check_float_pixels_writable
    # refused now, not after the fit
    check_float_pixels_writable(picture.pixels, _output_format(job.destination))
    if frames is not None and (args.labels or args.rgb):  # before any fitting
        raise UsageError(f"{job.source} has {len(frames.pixels)} frames: --labels and --rgb "
                         "take still images")
    if frames is not None and args.frame_palettes and args.model:
        raise UsageError(f"{job.source}: --frame-palettes fits a model per frame; --model "
                         "writes one (leave out one of them)")
    job_args = argparse.Namespace(**vars(args), destination=job.destination)
    q = _Quantizer(picture, job_args, n_threads, tick, frames)
    if args.colors is None:  # pngquant's default, quietly capped by the image's colours
        k_max = min(DEFAULT_COLORS, q.samples.n_distinct)
    else:
        k_max = q.samples.effective_k(args.colors, "k")
    k = _choose_k(q, k_max, args)
    result, model = q.attempt(k)
    elapsed = time.perf_counter() - start
    limit = None
    if args.skip_if_larger:
        limit = len(stdin_bytes or b"") if job.source == STDIO else os.path.getsize(job.source)

    def check_size(n_bytes):
        if limit is not None and n_bytes > limit:
            raise Refused(f"the result ({n_bytes:,} bytes) is larger than the input "
                          f"({limit:,} bytes): skipped", SKIPPED)
        return n_bytes

    outputs = [p for p in (job.destination, args.labels, args.model) if p and p != STDIO]
    from emcore import image
    if job.destination != STDIO:  # a one-line note (emcore/cli/__init__.py)
        image.warn_if_lossy(job.destination, q.fmt,
                            alpha=image.split_alpha(result.image_like())[1] is not None)
    with atomic_outputs(outputs, exclusive=not args.force) as files:
        if job.destination == STDIO:
            buf = io.BytesIO()
            q.write(result, buf)
            n_bytes = check_size(len(buf.getvalue()))
        for path, tmp in zip(outputs, files):
            if path == job.destination:
                q.write(result, tmp)
                n_bytes = check_size(os.path.getsize(tmp))
            elif path == args.labels:
                image.write_image(tmp, "NPY", result.labels)
            else:
                model.write(tmp)
        if job.destination == STDIO:  # last, once every file is ready to be put in place
            sys.stdout.buffer.write(buf.getvalue())
            sys.stdout.buffer.flush()
    if args.smooth:
        score = {"smoothing": args.smooth, "converged": bool(model.converged_)}
    elif args.method == "gmm":
        score = {"log_likelihood": float(model.lower_bound_),
                 "converged": bool(model.converged_)}
    else:
        score = {"inertia": float(model.inertia_),
                 "converged": bool(model.n_iter_ < args.max_iter)}
    n_frames = 1 if frames is None else len(frames.pixels)
    method = "spatial-gmm" if args.smooth else args.method
    return {"input": job.source, "frames": n_frames, "k": k, "method": method,
            "iterations": int(model.n_iter_), **score,
            # reported unless the summary is not shown (--quiet without --json)
            "psnr": round(q.psnr(k), 3) if args.json or not args.quiet else None,
            "bytes": n_bytes, "seconds": round(elapsed, 4), "output": job.destination}


def _say(line: str, stream=None) -> None:
    """Print a summary line. The results are written by then: a standard output that
    is closed or full loses the line (said once on stderr), not the exit status."""
    stream = sys.stdout if stream is None else stream
    try:
        print(line, file=stream, flush=True)
    except OSError as err:  # BrokenPipeError, ENOSPC
        if stream is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
            os.close(devnull)
            sys.stderr.write(f"emcore: the summary could not be printed ({err.strerror or err}); "
                             "the results were written\n")


def _report(summary: dict, args) -> None:
    if args.json:
        import json  # here: only --json needs it
        # standard output holds the image: JSON on stderr
        _say(json.dumps(summary), sys.stderr if summary["output"] == STDIO else None)
        return
    if summary["output"] == STDIO:
        return
    if args.quiet:  # pngquant's workflow: a batch says nothing unless asked
        return
    if "smoothing" in summary:
        score = f"smoothing {summary['smoothing']:g}"
    elif "log_likelihood" in summary:
        score = f"log-likelihood {summary['log_likelihood']:.4f}"
    else:
        score = f"inertia {summary['inertia']:.6g}"
    _say(f"{summary['method']} k={summary['k']}: {summary['iterations']} iterations, "
         f"{'converged' if summary['converged'] else 'not converged'}, {score}, "
         f"{summary['psnr']:.2f} dB, {summary['bytes']:,} bytes, {summary['seconds']:.2f} s "
         f"-> {summary['output']}")


def _status(err: BaseException) -> int:
    if isinstance(err, Refused):
        return err.status
    if isinstance(err, FileExistsError):
        return USAGE_ERROR
    return USAGE_ERROR if isinstance(err, (ValueError, TypeError)) else FAILURE


def _about(source: str, err: BaseException) -> str:
    """The one-line report of a file's error, naming the file once."""
    text = str(err)
    return text if text.startswith(source) else f"{source}: {text}"


def run(args):
    from importlib.util import find_spec

    from emcore._threads import allowed_threads, batch_layout, resolve_n_threads
    if args.optimize and find_spec("oxipng") is None:  # before any file is read
        raise ImportError("--optimize needs pyoxipng: pip install 'emcore[optimize]'")
    jobs = _plan(args)
    stdin_bytes = sys.stdin.buffer.read() if STDIO in args.inputs else None
    if len(jobs) == 1:  # one file: every core on it, errors as the command's own
        bar = progress(args.max_iter, f"{args.method} k={args.colors or DEFAULT_COLORS}",
                       args.quiet)
        try:
            # None: the estimators' rule picks the threads for the work (emcore/_threads.py)
            summary = run_job(jobs[0], args, args.threads, stdin_bytes,
                              tick=(lambda n, v: bar.update(1)) if bar is not None else None)
        except Refused as err:
            notice(args, _about(jobs[0].source, err))
            return err.status
        finally:
            if bar is not None:
                bar.close()
        _report(summary, args)
        return 0
    from emcore._files import ending_signals_as_exit
    team = resolve_n_threads(args.threads)
    workers, per_job = batch_layout(len(jobs), team if args.threads else allowed_threads(),
                                    team)
    debug = getattr(args, "debug", False)
    inputs = [stdin_bytes if job.source == STDIO else None for job in jobs]
    status = 0
    # SIGTERM or SIGHUP stops the batch as Ctrl-C does: the files being written (one a
    # worker) are finished, the others not started (_worker_start)
    with ending_signals_as_exit(), contextlib.ExitStack() as pools:
        # every job is submitted (and every worker forked) before the bar starts its thread
        outcomes, pool = _submitted(pools, jobs, inputs, args, per_job, workers)
        bar = progress(len(jobs), "files", args.quiet)
        try:
            for outcome in outcomes:
                if bar is not None:
                    bar.update(1)
                if outcome.summary is not None:
                    _report(outcome.summary, args)
                    continue
                if debug and not outcome.refused:
                    raise outcome.error
                if outcome.refused:
                    notice(args, outcome.message)
                else:
                    print(f"emcore segment: error: {outcome.message}", file=sys.stderr)
                status = status or outcome.status
        finally:
            if bar is not None:
                bar.close()
        # every file is done: the idle workers are ended now, so that the command can
        # end without waiting for the interpreter's teardown (emcore.cli.command)
        pool.shutdown(wait=True)
    return status


def batch_job(job: Job, stdin_bytes: bytes | None, args, n_threads: int,
              keep_error: bool) -> Outcome:
    """One file of a batch, its error caught: the other files go on."""
    try:
        return Outcome(summary=run_job(job, args, n_threads, stdin_bytes))
    except Exception as err:
        return Outcome(message=_about(job.source, err), status=_status(err),
                       refused=isinstance(err, Refused), error=err if keep_error else None)


#: In a batch's worker process: the event the command sets when it stops (see
#: _submitted), and the command's arguments and each job's threads, inherited through
#: fork (a job's message then carries only its file: the arguments hold every input,
#: and a batch of n files sent them n times)
_batch_stopped = None
_batch_args: argparse.Namespace | None = None
_batch_threads = 1


def _worker_start(parent: int, stopped, args: argparse.Namespace, n_threads: int) -> None:
    """Set up a batch's worker process. Ctrl-C, SIGTERM and SIGHUP sent to the whole
    command are left to the command's own process, which stops the batch once the
    files being written are finished (as on threads). On Linux a worker whose command
    process dies, however it dies, gets PARENT_GONE: the file it is writing is cleaned
    up and the worker ends (else it would wait for work for ever)."""
    global _batch_stopped, _batch_args, _batch_threads
    _batch_stopped, _batch_args, _batch_threads = stopped, args, n_threads
    from emcore._files import ENDING_SIGNALS, raise_exit
    for signum in (signal.SIGINT, *ENDING_SIGNALS):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(PARENT_GONE, raise_exit)
    try:
        import ctypes
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, PARENT_GONE)
    except (OSError, AttributeError):  # not Linux: the pool's own checks only
        pass
    if os.getppid() != parent:  # the command ended before the line above
        os._exit(128 + PARENT_GONE)


def _batch_job_in_worker(job: Job, stdin_bytes: bytes | None) -> Outcome:
    """batch_job in a worker process, which PARENT_GONE ends (the pool would take its
    SystemExit for the job's error and wait for the next job)."""
    if _batch_stopped is not None and _batch_stopped.is_set():  # queued before the stop
        return Outcome(message=f"{job.source}: not started, the batch was stopped",
                       status=FAILURE)
    try:
        return batch_job(job, stdin_bytes, _batch_args, _batch_threads, keep_error=False)
    except SystemExit as stop:  # its files are cleaned up by now
        os._exit(stop.code if isinstance(stop.code, int) else FAILURE)


def _submitted(pools: contextlib.ExitStack, jobs: list[Job], inputs: list[bytes | None], args,
               n_threads: int, workers: int):
    """Every job submitted to a pool entered on ``pools``: (their outcomes in order, the
    pool).

    Processes made by fork on Linux: each file's Python steps (about a third of its
    time) then hold their own interpreter's lock, where threads take turns at one
    (README, "Many files"); fork starts a worker without importing anything again.
    Threads on other systems (macOS's system libraries are not safe to fork, Windows
    has no fork), for one worker, for jobs of several threads each (a forked child runs
    the kernels on one: _threads._forked_child), under --debug (the error keeps its
    traceback), and where processes cannot be made (no semaphores without /dev/shm, no
    process left under RLIMIT_NPROC)."""
    from concurrent import futures
    in_threads = (getattr(args, "debug", False) or workers == 1 or n_threads > 1
                  or not sys.platform.startswith("linux"))
    if not in_threads:
        import multiprocessing
        pool = None
        try:
            fork = multiprocessing.get_context("fork")
            stopped = fork.Event()
            pool = pools.enter_context(futures.ProcessPoolExecutor(
                max_workers=workers, mp_context=fork, initializer=_worker_start,
                initargs=(os.getpid(), stopped, args, n_threads)))
            # leaving the batch (done, or stopped by a signal) first cancels the jobs not
            # yet handed to a worker and tells the workers to skip those already queued
            pools.callback(stopped.set)
            pools.callback(pool.shutdown, wait=False, cancel_futures=True)
            return pool.map(_batch_job_in_worker, jobs, inputs), pool
        except (OSError, NotImplementedError, futures.BrokenExecutor):
            if pool is not None:  # jobs already running in a worker finish there too
                pool.shutdown(cancel_futures=True)
    threads = pools.enter_context(futures.ThreadPoolExecutor(max_workers=workers))
    pools.callback(threads.shutdown, wait=False, cancel_futures=True)  # as above
    return threads.map(functools.partial(batch_job, args=args, n_threads=n_threads,
                                         keep_error=True), jobs, inputs), threads
