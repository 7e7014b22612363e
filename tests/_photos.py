"""The bundled photographs, for the tests and the benchmarks (benchmarks/_data.py
imports this module). A module name of its own: benchmarks/ has a conftest.py too,
and two modules named conftest cannot both be imported."""
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def load_photo(name, factor=1):
    """examples/data/<name>.png as (H, W, 3) uint8, read by Pillow alone (not by the
    code under test); factor > 1 upscales it bicubically (larger benchmark inputs)."""
    with Image.open(DATA / f"{name}.png") as im:
        im = im.convert("RGB")
        if factor != 1:
            im = im.resize((im.width * factor, im.height * factor), Image.BICUBIC)
        return np.asarray(im)


def segment_mean_palette(pixels, labels, k):
    """(k, C) uint8: the rounded float64 mean of each label's pixels, by numpy alone."""
    flat = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64)
    lab = np.asarray(labels).ravel()
    sums = np.zeros((k, flat.shape[1]))
    np.add.at(sums, lab, flat)
    counts = np.bincount(lab, minlength=k)
    means = sums / np.maximum(counts, 1)[:, None]
    return np.clip(np.rint(means), 0, 255).astype(np.uint8)
