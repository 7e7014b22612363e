"""Animated and multi-page images: every frame read, quantized and written back.

Frames are read fully composited (Pillow applies each GIF/APNG frame's disposal
and blending), so each is a whole picture of the same size. Stacked one above
the other they are one tall image for the image pipeline: one palette fitted to
every frame's merged colour counts. Written back, each frame keeps its duration
and the file its loop count; a frame shows exactly as painted (a GIF frame that
holds transparency is disposed to the background before the next; an APNG frame
replaces the pixels it covers, alpha included).
"""
from __future__ import annotations

import io
import os
from typing import NamedTuple

import numpy as np
from PIL import Image as PILImage
from PIL import ImageSequence

from emcore.image import (Picture, full_depth, pillow_errors, read_picture,
                          readable_source, sixteen_bit_colour)

#: formats that hold several frames (animation or pages)
MULTI_FRAME_FORMATS = {"GIF", "PNG", "TIFF", "WEBP"}


class Frames(NamedTuple):
    """Every frame's pixels (the same shape), with what writing them back needs."""
    pixels: list[np.ndarray]
    durations: list[int]  # milliseconds per frame (0 for pages)
    loop: int | None  # 0: for ever; None: the file said nothing
    icc_profile: bytes | None = None


def read_frames(source: str | os.PathLike | io.BytesIO) -> Frames:
    """Every frame of an image file, each converted as a still image would be."""
    source, name = readable_source(source)
    pixels, durations = [], []
    with pillow_errors(name), PILImage.open(source) as im:
        loop = im.info.get("loop")
        icc = im.info.get("icc_profile")
        for page, frame in enumerate(ImageSequence.Iterator(im)):
            durations.append(int(frame.info.get("duration", 0) or 0))
            if sixteen_bit_colour(frame):  # Pillow's frame holds 8 bits of them
                pixels.append(full_depth(source, im, name, page))
            else:
                pixels.append(read_picture(frame.copy()).pixels)
    shapes = {p.shape for p in pixels}
    if len(shapes) > 1:  # pages of a TIFF may differ in size or mode
        raise ValueError(f"{name}: its frames differ in size or channels ({sorted(shapes)}); "
                         "emcore quantizes frames of one shape")
    return Frames(pixels, durations, None if loop is None else int(loop), icc)


def stacked(frames: Frames) -> Picture:
    """The frames one above the other: one picture for the image pipeline."""
    return Picture(np.concatenate(frames.pixels, axis=0), frames.icc_profile, None)


def write_frames(file: str | io.BytesIO, fmt: str, labels: list[np.ndarray],
                 palettes: list[np.ndarray], frames: Frames) -> None:
    """Each frame as an image indexed into its palette (a palette per frame, or the
    same one for all), with the frames' durations and loop count."""
    from emcore.image import WEBP_OPTIONS, _as_indexed, palette_transparency
    if fmt not in MULTI_FRAME_FORMATS:
        raise ValueError(f"{fmt} holds one frame; write the {len(labels)} frames as .gif, "
                         ".png (APNG), .tif or .webp")
    palettes = [np.asarray(p) for p in palettes]
    alphas = [p[:, -1] if p.shape[1] in (2, 4) else None for p in palettes]
    transparent = any(a is not None and bool((a < 255).any()) for a in alphas)
    images = []
    for lab, palette, alpha in zip(labels, palettes, alphas):
        colours = palette if alpha is None else palette[:, :-1]
        im = _as_indexed(lab, colours)
        if alpha is not None:
            transparency = palette_transparency(alpha, fmt)
            if transparency is not None:  # each frame's own, read by Pillow's writer
                im.info["transparency"] = transparency
        images.append(im)
    # an APNG holds one palette for all its frames, TIFF and WebP pages no alpha in
    # theirs: such frames are written in truecolour (with alpha where any is shown)
    shared = all(np.array_equal(palettes[0], p) for p in palettes[1:])
    if fmt == "PNG" and not shared or fmt in ("TIFF", "WEBP") and transparent:
        images = [im.convert("RGBA" if transparent else "RGB") for im in images]
    options: dict[str, object] = {"save_all": True, "append_images": images[1:],
                                  **(WEBP_OPTIONS if fmt == "WEBP" else {})}
    if any(frames.durations):
        options["duration"] = list(frames.durations)
    if frames.loop is not None:
        options["loop"] = frames.loop
    elif fmt in ("PNG", "WEBP"):  # a GIF without a loop count (or pages) plays once;
        options["loop"] = 1       # Pillow's APNG and WebP would loop for ever
    if fmt == "GIF" and transparent:
        options["disposal"] = 2  # to the background: a frame is shown as painted
        if "transparency" in images[0].info:
            options["transparency"] = images[0].info["transparency"]
    if fmt == "PNG":  # each frame's pixels replace what was there, alpha too: a frame is
        options["blend"] = 0  # shown as painted (Pillow cannot dispose indexed frames)
    try:
        images[0].save(file, format=fmt, **options)
    except (OSError, ValueError, KeyError) as err:
        raise OSError(f"cannot write {fmt}: {err}") from None
