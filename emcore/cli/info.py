"""``emcore info``: size, mode, frames and distinct colours of an image file."""
from __future__ import annotations

import warnings

from emcore.cli._args import STDIO, add_common, image_argument


def add_parser(sub, formatter_class):
    info = sub.add_parser("info", help="size, mode, frames and unique colours of an image",
                          formatter_class=formatter_class)
    info.add_argument("input", metavar="IN", help="image file ('-' reads standard input)")
    add_common(info, threads=False, force=False)


def run(args):
    from emcore.image import count_frames, read_picture, split_alpha, unique_colors
    with warnings.catch_warnings():  # the frames are reported below
        warnings.filterwarnings("ignore", ".* frames: only the first is read", UserWarning)
        source = image_argument(args.input)
        picture = read_picture(source)
    arr = picture.pixels
    color, alpha = split_alpha(arr)
    n_pixels = color.shape[0] * color.shape[1]
    n_unique = len(unique_colors(color.reshape(-1, color.shape[2]))[0])
    frames = count_frames(source)
    name = "standard input" if args.input == STDIO else args.input
    print(f"{name}: {color.shape[1]}x{color.shape[0]} pixels, {color.shape[2]} colour "
          f"channel(s){' + alpha' if alpha is not None else ''}, {arr.dtype}, "
          f"{n_unique} unique colours ({n_pixels / n_unique:.1f} pixels per colour)"
          + (f", {frames} frames (colours of the first)" if frames > 1 else ""))
    return 0
