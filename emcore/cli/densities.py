"""``emcore densities``: the per-pixel density of an image under a saved mixture."""
from __future__ import annotations

import numpy as np

from emcore.cli._args import (UsageError, add_common, check_outputs, image_argument,
                              image_format)


def add_parser(sub, formatter_class):
    dens = sub.add_parser("densities", help="per-pixel mixture density under a saved model",
                          formatter_class=formatter_class)
    dens.add_argument("input", metavar="IN", help="image file ('-' reads standard input)")
    dens.add_argument("--model", required=True, metavar="FILE.npz",
                      help="a mixture written by 'emcore segment --method gmm --model'")
    dens.add_argument("-o", "--output", required=True, metavar="OUT.npy",
                      help="the (H, W) densities as a float64 .npy file")
    dens.add_argument("--log", action="store_true", help="write the log-density")
    dens.add_argument("--png", metavar="HEAT.png", help="also write a log-density heat map")
    add_common(dens)


def run(args):
    from emcore._files import atomic_outputs
    from emcore.densities import compute_densities
    from emcore.image import as_pixel_array, split_alpha, write_image
    from emcore.mixture import GaussianMixture
    from emcore.persistence import load

    check_outputs([(args.output, [".npy"]), (args.png, None)], inputs=(args.input, args.model),
                  force=args.force)
    png_format = image_format(args.png) if args.png else None
    model = load(args.model)
    if not isinstance(model, GaussianMixture):
        raise UsageError(f"{args.model} holds a {type(model).__name__}, not a mixture: write "
                         "one with 'emcore segment --method gmm --model FILE.npz'")
    pixels = as_pixel_array(image_argument(args.input))
    # a model fitted on an image with alpha scores colour and alpha together (its
    # composite coordinates); any other scores the colour
    with_alpha = getattr(model, "input_space_", "rgb") == "composite"
    color = pixels if with_alpha else split_alpha(pixels)[0]
    channels = 1 if color.ndim == 2 else color.shape[2]  # a grey image is (H, W)
    if channels != model.n_features_in_:
        raise UsageError(
            f"the model was fitted on colour and alpha ({model.n_features_in_} values a "
            f"pixel); {args.input} has {channels} channel(s)" if with_alpha else
            f"{args.input} has {channels} colour channel(s) but the model was fitted "
            f"on {model.n_features_in_}")
    log_density = compute_densities(color, model, log=True, n_threads=args.threads)
    outputs = [args.output] + ([args.png] if args.png else [])
    with atomic_outputs(outputs, exclusive=not args.force) as files:
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
