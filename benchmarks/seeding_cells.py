"""k-means++ on colour cells (the image pipeline's start) against k-means++ on every colour.

For each photograph (scikit-image's and the bundled ones, and coffee upscaled 3x)
at K = 32 and 256, and for the 100 crops of batch.py at K = 256: both starts
from the same seeds, each then fitted by the pipeline's k-means (over-relaxed
Lloyd to its tolerance, on the distinct colours weighted by their counts, one
thread). Reports the seeding time, the Lloyd passes, and the final error of the
cells' start against the other's in dB (10 log10 of the inertia ratio: above 0,
the cells' start ended worse), as a mean over seeds with its range.

    python benchmarks/seeding_cells.py [--seeds 5] [--crops 100]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load_photo, photo_crops  # noqa: E402
from quality import photographs  # noqa: E402

from emcore.kmeans import KMeans, kmeans_plusplus  # noqa: E402
from emcore.pipeline import IMAGE_OVER_RELAXATION, ImageSamples, seeding_cells  # noqa: E402


def compare(image: np.ndarray, k: int, seeds) -> dict:
    """Seeding ms, passes and final inertia for both starts, per seed."""
    samples = ImageSamples(image, n_threads=1)
    X, w = samples.fit_samples, samples.weights
    start = time.perf_counter()
    cells = seeding_cells(samples.samples, X, w, k)
    cell_ms = (time.perf_counter() - start) * 1e3
    points = {"every colour": (X, w), "cells": cells if cells is not None else (X, w)}
    out = {name: {"seed_ms": [], "passes": [], "inertia": []} for name in points}
    for seed in seeds:
        for name, (values, weights) in points.items():
            start = time.perf_counter()
            centers = kmeans_plusplus(values, weights, k, np.random.RandomState(seed), 1)
            elapsed = (time.perf_counter() - start) * 1e3
            model = KMeans(k, init=centers, n_init=1, over_relaxation=IMAGE_OVER_RELAXATION,
                           n_threads=1).fit(X, sample_weight=w)
            out[name]["seed_ms"].append(elapsed + (cell_ms if name == "cells" else 0))
            out[name]["passes"].append(model.n_iter_)
            out[name]["inertia"].append(model.inertia_)
    out["n"] = (len(X), len(points["cells"][0]))
    return out


def row(name: str, k: int, result: dict) -> str:
    full, cells = result["every colour"], result["cells"]
    db = 10 * np.log10(np.array(cells["inertia"]) / np.array(full["inertia"]))
    n, m = result["n"]
    return (f"| {name} | {k} | {n} | {m} | {np.mean(full['seed_ms']):.1f} | "
            f"{np.mean(cells['seed_ms']):.1f} | {np.mean(full['passes']):.1f} | "
            f"{np.mean(cells['passes']):.1f} | {db.mean():+.3f} ({db.min():+.3f} to "
            f"{db.max():+.3f}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--crops", type=int, default=100)
    args = parser.parse_args()
    print("| image | K | colours | cell points | seeding ms, every colour | seeding ms, "
          "cells | passes | passes, cells | dB, cells against every colour |")
    print("|---|---|---|---|---|---|---|---|---|")
    images = photographs()
    images["coffee x3"] = load_photo("coffee", 3)
    for name, image in images.items():
        for k in (32, 256):
            print(row(name, k, compare(image, k, range(args.seeds))), flush=True)
    merged: dict = {"every colour": {"seed_ms": [], "passes": [], "inertia": []},
                    "cells": {"seed_ms": [], "passes": [], "inertia": []}, "n": [0, 0]}
    for i, crop in enumerate(photo_crops(args.crops)):
        result = compare(crop, 256, [i])
        for name in ("every colour", "cells"):
            for key, values in result[name].items():
                merged[name][key] += values
        merged["n"] = [a + b / args.crops for a, b in zip(merged["n"], result["n"])]
    merged["n"] = tuple(int(round(v)) for v in merged["n"])
    print(row(f"{args.crops} crops (mean)", 256, merged))


if __name__ == "__main__":
    main()
