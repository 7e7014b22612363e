"""Picture quality of emcore's image pipeline beside libimagequant and Pillow.

For every photograph and method: PSNR and mean CIEDE2000 against the original,
the bytes of the result as an indexed PNG (zlib level 6 for everyone), and the
time of the quantization itself (in process, file reading and writing excluded).

    python benchmarks/quality.py            # the README's "Choosing the defaults" table
    python benchmarks/quality.py -k 16      # another number of colours

Needs the bench extra (imagequant, scikit-image). bench_quality.py runs the same
functions under pytest-benchmark.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load_photo  # noqa: E402

BUNDLED = ["coffee", "astronaut", "chelsea"]
#: scikit-image's own sample photographs of other character: dark (hubble_deep_field,
#: retina), saturated stains (immunohistochemistry), smooth sky (rocket)
EXTRA = ["hubble_deep_field", "rocket", "immunohistochemistry", "retina"]


def photographs(names=None) -> dict[str, np.ndarray]:
    """Bundled photos, plus scikit-image's where it is installed."""
    out = {name: load_photo(name) for name in BUNDLED}
    try:
        import skimage.data
        for name in EXTRA:
            out[name] = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    except ImportError:
        pass
    return {k: v for k, v in out.items() if names is None or k in names}


def psnr(original: np.ndarray, result: np.ndarray) -> float:
    mse = np.mean((original.astype(np.float64) - result.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / mse)) if mse > 0 else float("inf")


def mean_ciede2000(original: np.ndarray, result: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab
    return float(np.mean(deltaE_ciede2000(rgb2lab(original), rgb2lab(result))))


def png_bytes(indexed: Image.Image) -> int:
    buf = io.BytesIO()
    indexed.save(buf, "PNG", compress_level=6)
    return len(buf.getvalue())


def emcore_method(**options):
    """A quantizer: image, k -> mode 'P' PIL image, through emcore's own writer."""
    def run(img, k):
        from emcore import segment_image
        from emcore.image import _as_indexed
        seg = segment_image(img, k, **options)
        return _as_indexed(seg.labels, seg.palette)
    return run


def imagequant_method(dither: float):
    def run(img, k):
        import imagequant
        return imagequant.quantize_pil_image(Image.fromarray(img).convert("RGBA"),
                                             dithering_level=dither, max_colors=k)
    return run


def pillow_method(method):
    def run(img, k):
        return Image.fromarray(img).quantize(k, method=method, dither=Image.Dither.NONE)
    return run


#: name -> quantizer; the first is the command line's default
METHODS = {
    "emcore kmeans (default)": emcore_method(),
    "emcore kmeans dither 15/16": emcore_method(dither=15 / 16),
    "emcore kmeans oklab": emcore_method(color_space="oklab"),
    "emcore gmm spherical": emcore_method(method="gmm"),
    "emcore gmm spherical, component means": emcore_method(method="gmm", repaint="component"),
    "emcore gmm spherical, k-means++ start": emcore_method(method="gmm",
                                                         init_params="k-means++"),
    "emcore gmm diag": emcore_method(method="gmm", covariance_type="diag"),
    "emcore gmm full": emcore_method(method="gmm", covariance_type="full"),
    "emcore gmm full, component means": emcore_method(method="gmm", covariance_type="full",
                                                      repaint="component"),
    "libimagequant, no dithering": imagequant_method(0.0),
    "libimagequant, dithering": imagequant_method(1.0),
    "Pillow median cut": pillow_method(Image.Quantize.MEDIANCUT),
    "Pillow fast octree": pillow_method(Image.Quantize.FASTOCTREE),
}


def measure(quantizer, img: np.ndarray, k: int) -> dict:
    start = time.perf_counter()
    indexed = quantizer(img, k)
    seconds = time.perf_counter() - start
    result = np.asarray(indexed.convert("RGB"))
    return {"psnr": psnr(img, result), "ciede2000": mean_ciede2000(img, result),
            "bytes": png_bytes(indexed), "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", type=int, default=32)
    parser.add_argument("--photos", nargs="*", default=None)
    args = parser.parse_args(argv)
    photos = photographs(args.photos)
    results = {m: {} for m in METHODS}
    for name, img in photos.items():
        for method, quantizer in METHODS.items():
            results[method][name] = measure(quantizer, img, args.k)
        print(f"measured {name}", file=sys.stderr)
    names = list(photos)
    print(f"k = {args.k}; each cell: PSNR dB / mean CIEDE2000 / KB as indexed PNG; "
          f"last column: the means over the {len(names)} photos and the mean time\n")
    print("| method | " + " | ".join(names) + " | mean |")
    print("|---|" + "---|" * (len(names) + 1))
    for method, row in results.items():
        cells = [f"{r['psnr']:.2f} / {r['ciede2000']:.2f} / {r['bytes'] / 1000:.0f}"
                 for r in (row[n] for n in names)]
        mean = {key: np.mean([row[n][key] for n in names]) for key in row[names[0]]}
        cells.append(f"{mean['psnr']:.2f} / {mean['ciede2000']:.2f} / "
                     f"{mean['bytes'] / 1000:.0f}, {mean['seconds'] * 1000:.0f} ms")
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
