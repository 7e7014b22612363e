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

import numpy as np

USAGE_ERROR, FAILURE, INTERRUPTED = 2, 1, 130


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
            values = list(range(start, stop + 1, step))
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


def build_parser():
    parser = _Parser(
        prog="emcore", description="Gaussian-mixture (EM) and k-means colour segmentation.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    seg = sub.add_parser("segment", help="segment an image into k colours",
                         description="Fit a mixture (or k-means) to an image's colours and "
                                     "write the image repainted with the fitted colours.")
    seg.add_argument("input", metavar="IN", help="image file")
    seg.add_argument("-k", "--clusters", type=_positive_int, required=True, help="clusters")
    seg.add_argument("-o", "--output", required=True, metavar="OUT",
                     help="output image; its extension gives the format (.png, .jpg, .npy...)")
    seg.add_argument("--method", choices=("gmm", "kmeans"), default="gmm")
    seg.add_argument("--covariance", choices=("spherical", "diag", "full"), default="full",
                     help="mixture covariance type (gmm)")
    seg.add_argument("--max-iter", type=_non_negative_int, default=100,
                     help="iterations at most (default 100)")
    seg.add_argument("--tol", type=_non_negative_float, default=None,
                     help="convergence tolerance (default 1e-3 for gmm, 1e-4 for kmeans)")
    seg.add_argument("--seed", type=_non_negative_int, default=0, help="random seed")
    seg.add_argument("--threads", type=_positive_int, default=None,
                     help="threads (default: OMP_NUM_THREADS or all cores)")
    seg.add_argument("--no-unique-colors", action="store_true",
                     help="fit every pixel rather than each distinct colour weighted by count")
    seg.add_argument("--labels", metavar="FILE.npy", help="also write the (H, W) label map")
    seg.add_argument("--model", metavar="FILE.npz", help="also write the fitted model")
    seg.add_argument("--json", action="store_true", help="print the summary as JSON")
    seg.add_argument("--quiet", action="store_true", help="no progress bar")

    dens = sub.add_parser("densities", help="per-pixel mixture density under a saved model")
    dens.add_argument("input", metavar="IN", help="image file")
    dens.add_argument("--model", required=True, metavar="FILE.npz",
                      help="a mixture written by 'emcore segment --model'")
    dens.add_argument("-o", "--output", required=True, metavar="OUT.npy")
    dens.add_argument("--log", action="store_true", help="write the log-density")
    dens.add_argument("--png", metavar="HEAT.png", help="also write a log-density heat map")
    dens.add_argument("--threads", type=_positive_int, default=None)

    sweep = sub.add_parser("sweep", help="cost and time against k")
    sweep.add_argument("input", metavar="IN", help="image file")
    sweep.add_argument("--k", type=_k_range, required=True, metavar="START:STOP:STEP",
                       help="the k values, e.g. 2:64:2 (stop included) or 4,8,16")
    sweep.add_argument("--method", choices=("kmeans", "gmm"), default="kmeans")
    sweep.add_argument("-o", "--output", required=True, metavar="metrics.png",
                       help="plot of cost (inertia or BIC) and time against k")
    sweep.add_argument("--csv", metavar="metrics.csv", help="also write the numbers")
    sweep.add_argument("--seed", type=_non_negative_int, default=0)
    sweep.add_argument("--threads", type=_positive_int, default=None)
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    info = sub.add_parser("info", help="size, mode and unique colours of an image")
    info.add_argument("input", metavar="IN", help="image file")
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


def _check_output(path, extensions=None):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write {path}: folder {folder} is not writable")
    if extensions and os.path.splitext(path)[1].lower() not in extensions:
        raise UsageError(f"{path} must end in {' or '.join(extensions)}")


def _check_image_output(path):
    from PIL import Image as PILImage
    PILImage.init()
    ext = os.path.splitext(path)[1].lower()
    if ext != ".npy" and ext not in PILImage.EXTENSION:
        raise UsageError(f"cannot tell the image format from {path!r}: use .png, .jpg, .tif, "
                         ".webp or .npy")
    _check_output(path)


def cmd_segment(args):
    from emcore.image import save_image
    from emcore.segment import EM, _fit, _palette_and_labels, _Pixels

    _check_image_output(args.output)
    for path, ext in ((args.labels, ".npy"), (args.model, ".npz")):
        if path:
            _check_output(path, [ext])
    bar = _progress(args.max_iter, f"{args.method} k={args.clusters}", args.quiet)

    def tick(n_iter, value):
        if bar is not None:
            bar.update(1)

    start = time.perf_counter()
    try:
        if args.method == "gmm":
            options = dict(covariance_type=args.covariance, random_state=args.seed,
                           n_threads=args.threads, callback=tick)
            if args.tol is not None:
                options["tol"] = args.tol
            em = EM(args.input, args.clusters, unique_colors=not args.no_unique_colors,
                    **options).fit(args.max_iter)
            model, labels, result = em.model_, em.labels(), em.segmented()
            summary = {"log_likelihood": model.lower_bound_, "converged": bool(model.converged_)}
        else:
            if args.max_iter < 1:
                raise UsageError("--max-iter must be at least 1 for kmeans")
            px = _Pixels(args.input, not args.no_unique_colors)
            model = _fit(px, px.check_k(args.clusters, "k"), "kmeans",
                         tol=1e-4 if args.tol is None else args.tol, max_iter=args.max_iter,
                         random_state=args.seed, n_threads=args.threads, callback=tick)
            palette, labels = _palette_and_labels(px, model)
            result = px.paint(labels, palette)
            summary = {"inertia": model.inertia_,
                       "converged": bool(model.n_iter_ < args.max_iter)}
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - start
    save_image(result, args.output)
    if args.labels:
        save_image(labels, args.labels)  # int32 already
    if args.model:
        model.save(args.model)
    summary = {"k": args.clusters, "method": args.method, "iterations": int(model.n_iter_),
               **summary, "seconds": round(elapsed, 4), "output": args.output}
    if args.json:
        print(json.dumps(summary))
    else:
        score = (f"log-likelihood {summary['log_likelihood']:.4f}" if args.method == "gmm"
                 else f"inertia {summary['inertia']:.6g}")
        print(f"{args.method} k={args.clusters}: {summary['iterations']} iterations, "
              f"{'converged' if summary['converged'] else 'not converged'}, {score}, "
              f"{elapsed:.2f} s -> {args.output}")
    return 0


def cmd_densities(args):
    from emcore._base import load
    from emcore.densities import compute_densities
    from emcore.image import as_pixel_array, save_image, split_alpha
    from emcore.mixture import GaussianMixture

    _check_output(args.output, [".npy"])
    if args.png:
        _check_image_output(args.png)
    model = load(args.model)
    if not isinstance(model, GaussianMixture):
        raise UsageError(f"{args.model} holds a {type(model).__name__}, not a mixture: write "
                         "one with 'emcore segment --method gmm --model FILE.npz'")
    color, _ = split_alpha(as_pixel_array(args.input))
    if color.shape[2] != model.n_features_in_:
        raise UsageError(f"{args.input} has {color.shape[2]} colour channel(s) but the model "
                         f"was fitted on {model.n_features_in_}")
    log_density = compute_densities(color, model, log=True, n_threads=args.threads)
    save_image(log_density if args.log else np.exp(log_density), args.output)
    if args.png:
        finite = log_density[np.isfinite(log_density)]
        # from the 1st percentile up: a few far-off pixels would wash out the rest
        low, high = (np.percentile(finite, 1), finite.max()) if finite.size else (0.0, 1.0)
        heat = (np.clip((log_density - low) / max(high - low, 1e-12), 0, 1) * 255)
        save_image(np.rint(heat).astype(np.uint8), args.png)
    print(f"densities of {color.shape[0]}x{color.shape[1]} pixels -> {args.output}"
          + (f", heat map -> {args.png}" if args.png else ""))
    return 0


def cmd_sweep(args):
    from emcore.image import atomic_output
    from emcore.plot import plot_k_metrics
    from emcore.segment import k_sweep

    _check_output(args.output, [".png", ".pdf", ".svg"])
    if args.csv:
        _check_output(args.csv, [".csv"])
    bar = _progress(len(args.k), f"{args.method} sweep", args.quiet)
    try:
        result = k_sweep(args.input, args.k, method=args.method, random_state=args.seed,
                         n_threads=args.threads,
                         callback=(lambda k, c, t: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    plot_k_metrics(result["k"], result["cost"], result["time"], cost_name=result["cost_name"],
                   path=args.output)
    if args.csv:
        with atomic_output(args.csv) as tmp:
            with open(tmp, "w") as f:
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


COMMANDS = {"segment": cmd_segment, "densities": cmd_densities, "sweep": cmd_sweep,
            "info": cmd_info}


def main(argv=None):
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 and a usage line on bad arguments
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("emcore: interrupted; nothing was written", file=sys.stderr)
        return INTERRUPTED
    except Exception as err:  # one line for the person at the terminal
        if args.debug:
            raise
        usage = isinstance(err, (ValueError, TypeError))
        hint = (f" (see 'emcore {args.command} --help')" if usage
                else " (add --debug for details)" if not isinstance(err, OSError) else "")
        print(f"emcore {args.command}: error: {err}{hint}", file=sys.stderr)
        return USAGE_ERROR if usage else FAILURE


if __name__ == "__main__":
    sys.exit(main())
