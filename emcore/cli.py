"""The ``emcore`` command: segment, densities, sweep and info.

Errors end in one line on stderr and exit status 2 (a bad argument or value)
or 1 (a file could not be read or written); ``--debug`` shows the traceback.
Ctrl-C stops within one iteration and writes nothing (exit status 130).
Every output file is written to a temporary file and renamed into place.
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

USAGE_ERROR, FAILURE, INTERRUPTED = 2, 1, 130
#: k values one sweep may fit
MAX_SWEEP = 1000


class UsageError(ValueError):
    """A command-line value that is wrong in itself (exit status 2)."""


def _k_range(text):
    """'2:64:2' (start:stop:step, stop included), '8' or '4,8,16'."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] < 1):
                raise ValueError
            start, stop = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1
            span = range(start, stop + 1, step)
            if len(span) > MAX_SWEEP:  # before building the list
                raise argparse.ArgumentTypeError(
                    f"k range {text!r} has {len(span)} values; at most {MAX_SWEEP}")
            values = list(span)
        else:
            values = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid k range {text!r}: use start:stop:step (e.g. 2:64:2), or 4,8,16") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"k range {text!r} must hold positive values")
    return values


def _number(kind, minimum, name):
    """An argparse type: a ``kind`` (int or float) that is finite and >= minimum."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
        if not (np.isfinite(value) and value >= minimum):
            raise argparse.ArgumentTypeError(f"expected {name}, got {text}")
        return value
    return parse


_positive_int = _number(int, 1, "a positive integer")
_non_negative_int = _number(int, 0, "an integer >= 0")
_non_negative_float = _number(float, 0, "a number >= 0")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (exit status 2) instead of the whole usage."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default (where it has one)."""


def _common(parser: argparse.ArgumentParser, *, threads: bool = True, force: bool = True,
            quiet: bool = False) -> None:
    """Options every subcommand spells the same way."""
    # SUPPRESS: "emcore --debug segment ..." and "emcore segment ... --debug" both work
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    if threads:
        parser.add_argument("--threads", type=_positive_int, default=None,
                            help="threads (default: OMP_NUM_THREADS or all cores)")
    if force:
        parser.add_argument("-f", "--force", action="store_true",
                            help="overwrite output files that exist")
    if quiet:
        parser.add_argument("--quiet", action="store_true", help="no progress bar or notices")


def _dither_strength(text):
    value = _number(float, 0, "a dither strength from 0 to 1")(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a dither strength from 0 to 1, got {text}")
    return value


def build_parser():
    from emcore import __version__
    parser = _Parser(
        prog="emcore", description="Gaussian-mixture (EM) and k-means colour segmentation.",
        formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"emcore {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    seg = sub.add_parser("segment", help="reduce an image to k colours", formatter_class=_Help,
                         description="Fit k-means (or a Gaussian mixture) to an image's colours "
                                     "and write the image painted with k colours: an indexed "
                                     "PNG/GIF/TIFF/BMP with exactly that palette.")
    seg.add_argument("input", metavar="IN", help="image file")
    seg.add_argument("-k", "--colors", "--clusters", dest="colors", type=_positive_int,
                     required=True, metavar="K",
                     help="colours (segments); more than the image has keeps every colour")
    seg.add_argument("-o", "--output", required=True, metavar="OUT",
                     help="output image; its extension gives the format (.png, .gif, .tif, "
                          ".jpg, .npy...)")
    seg.add_argument("--method", choices=("kmeans", "gmm"), default="kmeans",
                     help="k-means (the best picture measured) or a Gaussian mixture by EM")
    seg.add_argument("--covariance", choices=("spherical", "diag", "full"), default="spherical",
                     help="mixture covariance type (gmm)")
    seg.add_argument("--color-space", choices=("rgb", "oklab"), default="rgb",
                     help="fit in sRGB or in the perceptual OKLab space")
    seg.add_argument("--dither", type=_dither_strength, nargs="?", const=1.0, default=0.0,
                     metavar="STRENGTH",
                     help="Floyd-Steinberg error diffusion, 0 to 1 (1 when given alone)")
    seg.add_argument("--repaint", choices=("segment", "component"), default="segment",
                     help="paint each segment with its pixels' mean or the model's mean")
    seg.add_argument("--rgb", action="store_true",
                     help="write RGB pixels instead of an indexed image")
    seg.add_argument("--max-iter", type=_non_negative_int, default=100,
                     help="iterations at most")
    seg.add_argument("--tol", type=_non_negative_float, default=None,
                     help="convergence tolerance (default 1e-3 for gmm, 1e-4 for kmeans)")
    seg.add_argument("--seed", type=_non_negative_int, default=0, help="random seed")
    seg.add_argument("--no-unique-colors", action="store_true",
                     help="fit every pixel rather than each distinct colour weighted by count")
    seg.add_argument("--labels", metavar="FILE.npy", help="also write the (H, W) label map")
    seg.add_argument("--model", metavar="FILE.npz", help="also write the fitted model")
    seg.add_argument("--json", action="store_true", help="print the summary as JSON")
    _common(seg, quiet=True)

    dens = sub.add_parser("densities", help="per-pixel mixture density under a saved model",
                          formatter_class=_Help)
    dens.add_argument("input", metavar="IN", help="image file")
    dens.add_argument("--model", required=True, metavar="FILE.npz",
                      help="a mixture written by 'emcore segment --method gmm --model'")
    dens.add_argument("-o", "--output", required=True, metavar="OUT.npy",
                      help="the (H, W) densities as a float64 .npy file")
    dens.add_argument("--log", action="store_true", help="write the log-density")
    dens.add_argument("--png", metavar="HEAT.png", help="also write a log-density heat map")
    _common(dens)

    sweep = sub.add_parser("sweep", help="cost and time against k", formatter_class=_Help)
    sweep.add_argument("input", metavar="IN", help="image file")
    sweep.add_argument("-k", "--colors", "--k", dest="colors", type=_k_range, required=True,
                       metavar="START:STOP:STEP",
                       help="the k values, e.g. 2:64:2 (stop included) or 4,8,16")
    sweep.add_argument("--method", choices=("kmeans", "gmm"), default="kmeans",
                       help="k-means (cost: inertia) or a Gaussian mixture (cost: BIC)")
    sweep.add_argument("-o", "--output", metavar="metrics.png", default=None,
                       help="plot of cost and time against k (.png, .pdf or .svg; needs "
                            "matplotlib)")
    sweep.add_argument("--csv", metavar="metrics.csv", default=None,
                       help="the numbers as CSV (at least one of -o and --csv)")
    sweep.add_argument("--seed", type=_non_negative_int, default=0, help="random seed")
    _common(sweep, quiet=True)

    info = sub.add_parser("info", help="size, mode and unique colours of an image",
                          formatter_class=_Help)
    info.add_argument("input", metavar="IN", help="image file")
    _common(info, threads=False, force=False)
    return parser


def _progress(total, description, quiet):
    """A tqdm bar on stderr when it is a terminal (shown after one second), else None."""
    if quiet or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, delay=1.0, file=sys.stderr, leave=False)


def _check_outputs(args, outputs):
    """Refuse, before any work, outputs that cannot or should not be written.

    ``outputs`` holds (path, allowed extensions or None) pairs; None paths are skipped.
    An existing file needs --force; the input file is named as such.
    """
    seen = set()
    inputs = {os.path.realpath(p) for p in (args.input, getattr(args, "model", None))
              if p and os.path.exists(p)}
    for path, extensions in outputs:
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK):
            raise PermissionError(f"cannot write {path}: folder {folder} is not writable")
        if extensions and os.path.splitext(path)[1].lower() not in extensions:
            raise UsageError(f"{path} must end in {' or '.join(extensions)}")
        real = os.path.realpath(path)
        if real in seen:
            raise UsageError(f"{path} is named for two outputs")
        seen.add(real)
        if os.path.exists(path) and not getattr(args, "force", False):
            what = "is an input file" if real in inputs else "exists"
            raise UsageError(f"{path} {what}; add --force to replace it")


def _image_format(path):
    from emcore.image import image_format
    try:
        return image_format(path)
    except ValueError as err:
        raise UsageError(str(err)) from None


def cmd_segment(args):
    from emcore._files import atomic_outputs
    from emcore.image import warn_if_lossy, write_image
    from emcore.pipeline import ImageSamples, finish, fit_model

    fmt = _image_format(args.output)
    _check_outputs(args, [(args.output, None), (args.labels, [".npy"]),
                          (args.model, [".npz"])])
    if args.method == "kmeans" and args.max_iter < 1:
        raise UsageError("--max-iter must be at least 1 for kmeans")
    warn_if_lossy(args.output, fmt)  # a one-line note (see main)
    bar = _progress(args.max_iter, f"{args.method} k={args.colors}", args.quiet)

    def tick(n_iter, value):
        if bar is not None:
            bar.update(1)

    start = time.perf_counter()
    try:
        samples = ImageSamples(args.input, unique_colors=not args.no_unique_colors,
                               color_space=args.color_space, n_threads=args.threads)
        k = samples.effective_k(args.colors, "k")
        options = dict(max_iter=args.max_iter, random_state=args.seed, n_threads=args.threads,
                       callback=tick)
        if args.tol is not None:
            options["tol"] = args.tol
        if args.method == "gmm":
            options["covariance_type"] = args.covariance
        model = fit_model(samples, k, args.method, **options)
        result = finish(samples, model, repaint=args.repaint, dither=args.dither)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - start
    outputs = [p for p in (args.output, args.labels, args.model) if p]
    with atomic_outputs(outputs) as files:  # all of them or none
        write_image(files[0], fmt, result.image, labels=None if args.rgb else result.labels,
                    palette=None if args.rgb else result.palette,
                    icc_profile=result.icc_profile)
        if args.labels:
            write_image(files[outputs.index(args.labels)], "NPY", result.labels)
        if args.model:
            model.write(files[outputs.index(args.model)])
    if args.method == "gmm":
        summary = {"log_likelihood": float(model.lower_bound_), "converged": bool(model.converged_)}
    else:
        summary = {"inertia": float(model.inertia_),
                   "converged": bool(model.n_iter_ < args.max_iter)}
    summary = {"k": k, "method": args.method, "iterations": int(model.n_iter_), **summary,
               "seconds": round(elapsed, 4), "output": args.output}
    if args.json:
        print(json.dumps(summary))
    else:
        score = (f"log-likelihood {summary['log_likelihood']:.4f}" if args.method == "gmm"
                 else f"inertia {summary['inertia']:.6g}")
        print(f"{args.method} k={k}: {summary['iterations']} iterations, "
              f"{'converged' if summary['converged'] else 'not converged'}, {score}, "
              f"{elapsed:.2f} s -> {args.output}")
    return 0


def cmd_densities(args):
    from emcore._files import atomic_outputs
    from emcore.densities import compute_densities
    from emcore.image import as_pixel_array, split_alpha, write_image
    from emcore.mixture import GaussianMixture
    from emcore.persistence import load

    _check_outputs(args, [(args.output, [".npy"]), (args.png, None)])
    png_format = _image_format(args.png) if args.png else None
    model = load(args.model)
    if not isinstance(model, GaussianMixture):
        raise UsageError(f"{args.model} holds a {type(model).__name__}, not a mixture: write "
                         "one with 'emcore segment --method gmm --model FILE.npz'")
    color, _ = split_alpha(as_pixel_array(args.input))
    if color.shape[2] != model.n_features_in_:
        raise UsageError(f"{args.input} has {color.shape[2]} colour channel(s) but the model "
                         f"was fitted on {model.n_features_in_}")
    log_density = compute_densities(color, model, log=True, n_threads=args.threads)
    outputs = [args.output] + ([args.png] if args.png else [])
    with atomic_outputs(outputs) as files:
        write_image(files[0], "NPY", log_density if args.log else np.exp(log_density))
        if args.png:
            finite = log_density[np.isfinite(log_density)]
            # from the 1st percentile up: a few far-off pixels would wash out the rest
            low, high = (np.percentile(finite, 1), finite.max()) if finite.size else (0.0, 1.0)
            heat = np.clip((log_density - low) / max(high - low, 1e-12), 0, 1) * 255
            write_image(files[1], png_format, np.rint(heat).astype(np.uint8))
    print(f"densities of {color.shape[0]}x{color.shape[1]} pixels -> {args.output}"
          + (f", heat map -> {args.png}" if args.png else ""))
    return 0


def cmd_sweep(args):
    from emcore._files import atomic_outputs
    from emcore.segment import k_sweep

    if args.output is None and args.csv is None:
        raise UsageError("nothing to write: give -o PLOT and/or --csv FILE")
    _check_outputs(args, [(args.output, [".png", ".pdf", ".svg"]), (args.csv, [".csv"])])
    if args.output:
        try:  # before fitting, not after
            from emcore.plot import plot_k_metrics
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("the plot needs matplotlib (pip install 'emcore[plot]'); "
                             "or write only the numbers with --csv") from None
    bar = _progress(len(args.colors), f"{args.method} sweep", args.quiet)
    try:
        result = k_sweep(args.input, args.colors, method=args.method, random_state=args.seed,
                         n_threads=args.threads,
                         callback=(lambda k, c, t: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    outputs = [p for p in (args.output, args.csv) if p]
    with atomic_outputs(outputs) as files:
        if args.output:
            plot_k_metrics(result["k"], result["cost"], result["time"],
                           cost_name=result["cost_name"], path=files[0])
        if args.csv:
            with open(files[-1], "w") as f:
                f.write(f"k,{result['cost_name']},seconds\n")
                for k, c, t in zip(result["k"], result["cost"], result["time"]):
                    f.write(f"{k},{float(c)!r},{t:.6f}\n")
    for k, c, t in zip(result["k"], result["cost"], result["time"]):
        print(f"k={k}: {result['cost_name']} {c:.6g}, {t:.3f} s")
    return 0


def cmd_info(args):
    from emcore.image import as_pixel_array, split_alpha, unique_colors
    arr = as_pixel_array(args.input)
    color, alpha = split_alpha(arr)
    n_pixels = color.shape[0] * color.shape[1]
    n_unique = len(unique_colors(color.reshape(-1, color.shape[2]))[0])
    print(f"{args.input}: {color.shape[1]}x{color.shape[0]} pixels, {color.shape[2]} colour "
          f"channel(s){' + alpha' if alpha is not None else ''}, {arr.dtype}, "
          f"{n_unique} unique colours ({n_pixels / n_unique:.1f} pixels per colour)")
    return 0


def _notice(args, message):
    if not getattr(args, "quiet", False):
        print(f"emcore {args.command}: note: {message}", file=sys.stderr)


COMMANDS = {"segment": cmd_segment, "densities": cmd_densities, "sweep": cmd_sweep,
            "info": cmd_info}


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 and a usage line on bad arguments
    debug = getattr(args, "debug", False)
    try:
        with warnings.catch_warnings():
            # a library warning (k above the distinct colours, a lossy format) is a one-line note
            warnings.showwarning = lambda message, *rest: _notice(args, str(message))
            warnings.simplefilter("always", UserWarning)
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("emcore: interrupted; nothing was written", file=sys.stderr)
        return INTERRUPTED
    except Exception as err:  # one line for the person at the terminal
        if debug:
            raise
        usage = isinstance(err, (ValueError, TypeError))
        hint = (f" (see 'emcore {args.command} --help')" if usage
                else " (add --debug for details)" if not isinstance(err, OSError) else "")
        print(f"emcore {args.command}: error: {err}{hint}", file=sys.stderr)
        return USAGE_ERROR if usage else FAILURE


if __name__ == "__main__":
    sys.exit(main())
