"""Shared data for the benchmarks.

By default the benchmarks run once each as correctness checks (pytest's
--benchmark-disable in pyproject.toml) on a bundled photo. EMCORE_BENCH_FULL=1
adds the large sizes (the photo upscaled to 2.2 MP; synthetic images up to 8 MP
in the scaling group).
"""
import os
import sys
from pathlib import Path

import numpy as np

# the tests' photo loader, shared rather than copied
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _photos import DATA, load_photo  # noqa: E402, F401 (DATA: for bench_memory)

FULL = os.environ.get("EMCORE_BENCH_FULL") == "1"


def synthetic(n_pixels, seed=0):
    """A smooth-ish synthetic RGB image: a tiled, noisy copy of the coffee photo."""
    base = load_photo("coffee")
    reps = int(np.ceil(n_pixels / base.shape[0] / base.shape[1]))
    img = np.tile(base, (reps, 1, 1))[: n_pixels // base.shape[1]]
    noise = np.random.RandomState(seed).randint(-3, 4, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def photo_crops(n):
    """n crops of the bundled photographs, 160 x 120 to 320 x 240 (the same for a
    given n): the many small images of batch.py and over_relaxation.py."""
    rng = np.random.RandomState(0)
    photos = [load_photo(name) for name in ("coffee", "astronaut", "chelsea")]
    for i in range(n):
        photo = photos[i % 3]
        h, w = rng.randint(120, 241), rng.randint(160, 321)
        y, x = rng.randint(0, photo.shape[0] - h + 1), rng.randint(0, photo.shape[1] - w + 1)
        yield photo[y:y + h, x:x + w]


IMAGES = {
    "coffee-0.24MP": lambda: load_photo("coffee"),
    "coffee-2.2MP": lambda: load_photo("coffee", 3),
}
# Peer comparisons stop at 2.2 MP (scikit-learn needs several GB there already);
# bench_scaling.py takes emcore alone up to 8 MP.
SIZES = list(IMAGES) if FULL else ["coffee-0.24MP"]
_cache = {}


def image(name):
    if name not in _cache:
        _cache[name] = IMAGES[name]()
    return _cache[name]


def kmeans_init(pixels, k, seed=0):
    """Means at k distinct random pixels: the shared start of emcore and its peers."""
    X = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64)
    uniq = np.unique(X, axis=0)
    return uniq[np.random.RandomState(seed).choice(len(uniq), k, replace=False)]


