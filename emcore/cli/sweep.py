"""``emcore sweep``: cost and time against k (the k-means tutorial's closing plot)."""
from __future__ import annotations

import argparse

from emcore.cli._args import (UsageError, add_common, check_outputs, image_argument,
                              non_negative_int, progress)

#: k values one sweep may fit
MAX_SWEEP = 1000


def k_range(text):
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
    if not values:
        raise argparse.ArgumentTypeError(f"k range {text!r} is empty: its stop is below its "
                                         "start")
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"k range {text!r} must hold values of at least 1")
    return values


def add_parser(sub, formatter_class):
    sweep = sub.add_parser("sweep", help="cost and time against k",
                           formatter_class=formatter_class)
    sweep.add_argument("input", metavar="IN", help="image file ('-' reads standard input)")
    sweep.add_argument("-k", "--colors", "--k", dest="colors", type=k_range, required=True,
                       metavar="START:STOP:STEP",
                       help="the k values, e.g. 2:64:2 (stop included) or 4,8,16")
    sweep.add_argument("--method", choices=("kmeans", "gmm"), default="kmeans",
                       help="k-means (cost: inertia) or a Gaussian mixture (cost: BIC)")
    sweep.add_argument("-o", "--output", metavar="metrics.png", default=None,
                       help="plot of cost and time against k (.png, .pdf or .svg; needs "
                            "matplotlib)")
    sweep.add_argument("--csv", metavar="metrics.csv", default=None,
                       help="the numbers as CSV (at least one of -o and --csv)")
    sweep.add_argument("--seed", type=non_negative_int, default=0, help="random seed")
    add_common(sweep, quiet=True)


def run(args):
    from emcore._files import atomic_outputs
    from emcore.segment import k_sweep

    if args.output is None and args.csv is None:
        raise UsageError("nothing to write: give -o PLOT and/or --csv FILE")
    check_outputs([(args.output, [".png", ".pdf", ".svg"]), (args.csv, [".csv"])],
                  inputs=(args.input,), force=args.force)
    if args.output:
        try:  # before fitting, not after
            from emcore.plot import plot_k_metrics
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("the plot needs matplotlib (pip install 'emcore[plot]'); "
                             "or write only the numbers with --csv") from None
    bar = progress(len(args.colors), f"{args.method} sweep", args.quiet)
    try:
        result = k_sweep(image_argument(args.input), args.colors, method=args.method,
                         random_state=args.seed, n_threads=args.threads,
                         callback=(lambda k, c, t: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    outputs = [p for p in (args.output, args.csv) if p]
    with atomic_outputs(outputs, exclusive=not args.force) as files:
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
