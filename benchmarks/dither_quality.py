"""Dithered pictures as seen from a distance: emcore's error diffusion beside libimagequant's.

A dithered picture is judged after a Gaussian blur in linear light (a crude
model of viewing distance: the eye averages light, not sRGB codes), at sigma 1
and 2 pixels: PSNR and mean CIEDE2000 of the blurred result against the blurred
original. Also: unblurred PSNR and SSIM, the indexed PNG's bytes, and banding on
a smooth ramp (the largest CIEDE2000 between a row's mean colour, averaged in
linear light, and the original's).

Every emcore variant dithers onto the same palette (the default k-means one);
libimagequant dithers onto its own.

    python benchmarks/dither_quality.py              # K = 32 and 256
    python benchmarks/dither_quality.py -k 32 --photos coffee

Needs the bench extra (imagequant, scikit-image; scipy for the blur).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optimum_gap import synthetic  # noqa: E402
from quality import mean_ciede2000, photographs, png_bytes, psnr  # noqa: E402

from emcore.colorspace import linear_to_srgb, srgb_to_linear  # noqa: E402


def blurred(img: np.ndarray, sigma: float) -> np.ndarray:
    """The image blurred by a Gaussian of ``sigma`` pixels in linear light, as sRGB floats."""
    from scipy.ndimage import gaussian_filter
    linear = srgb_to_linear(img / 255.0)
    out = np.stack([gaussian_filter(linear[..., c], sigma, mode="nearest")
                    for c in range(linear.shape[2])], axis=2)
    return np.clip(linear_to_srgb(out), 0, 1) * 255


def banding(original: np.ndarray, result: np.ndarray) -> float:
    """Largest CIEDE2000 between row means (in linear light) of result and original
    (the ramp changes down the rows)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    def profile(img):
        return linear_to_srgb(srgb_to_linear(img / 255.0).mean(axis=1))[None]
    return float(deltaE_ciede2000(rgb2lab(profile(original)), rgb2lab(profile(result))).max())


def emcore_variant(strength: float, linear: bool, color_space: str = "rgb"):
    """Dither onto emcore's undithered palette fitted in ``color_space``: (indexed PIL
    image) for (img, k)."""
    def run(img, k):
        from emcore import segment_image
        from emcore.image import _as_indexed
        from emcore.pipeline import ImageSamples
        segmentation = segment_image(img, k, color_space=color_space)
        palette = segmentation.palette
        labels = (ImageSamples(img).dither(palette.astype(np.float64), strength, linear=linear)
                  if strength > 0 else segmentation.labels)
        return _as_indexed(labels, palette)
    return run


def imagequant_dithered(img, k):
    import imagequant
    return imagequant.quantize_pil_image(Image.fromarray(img).convert("RGBA"),
                                         dithering_level=1.0, max_colors=k)


METHODS = {
    "emcore, not dithered": emcore_variant(0.0, False),
    "emcore FS sRGB 1": emcore_variant(1.0, False),
    "emcore FS sRGB 15/16": emcore_variant(15 / 16, False),
    "emcore FS linear 1": emcore_variant(1.0, True),
    "emcore FS linear 15/16": emcore_variant(15 / 16, True),
    "emcore FS linear 7/8": emcore_variant(7 / 8, True),
    "emcore FS sRGB 15/16, OKLab palette": emcore_variant(15 / 16, False, "oklab"),
    "libimagequant dithered": imagequant_dithered,
}


def measure(original: np.ndarray, indexed: Image.Image, ramp: bool) -> dict:
    from skimage.metrics import structural_similarity
    result = np.asarray(indexed.convert("RGB"))
    row = {"psnr": psnr(original, result),
           "ssim": structural_similarity(original, result, channel_axis=2, data_range=255),
           "bytes": png_bytes(indexed)}
    for sigma in (1, 2):
        a, b = blurred(original, sigma), blurred(result, sigma)
        row[f"psnr{sigma}"] = psnr(a, b)
        row[f"de{sigma}"] = mean_ciede2000(a / 255, b / 255)
    if ramp:
        row["banding"] = banding(original, result)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", type=int, nargs="*", default=[32, 256])
    parser.add_argument("--photos", nargs="*", default=None)
    parser.add_argument("--methods", nargs="*", default=list(METHODS), metavar="NAME")
    args = parser.parse_args(argv)
    images = {**photographs(args.photos), **({} if args.photos else synthetic())}
    methods = {name: METHODS[name] for name in args.methods}
    print("each cell: blurred sigma 1 PSNR / CIEDE2000, sigma 2 PSNR / CIEDE2000; "
          "unblurred PSNR / SSIM; KB (ramp: + banding)\n")
    print("| image | K | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    for k in args.k:
        for name, img in images.items():
            cells = []
            for run in methods.values():
                r = measure(img, run(img, k), ramp=name.startswith("ramp"))
                cell = (f"{r['psnr1']:.2f} / {r['de1']:.3f}, {r['psnr2']:.2f} / {r['de2']:.3f}; "
                        f"{r['psnr']:.2f} / {r['ssim']:.3f}; {r['bytes'] / 1000:.0f}")
                if "banding" in r:
                    cell += f"; banding {r['banding']:.2f}"
                cells.append(cell)
            print(f"| {name} | {k} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
