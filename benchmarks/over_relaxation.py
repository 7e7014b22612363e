"""Over-relaxed k-means beside Lloyd's: passes and error on many small images.

The crops of ``benchmarks/batch.py`` (of the bundled photographs, 160 x 120 to
320 x 240), each fitted on its distinct colours weighted by their counts, one
seed per crop, by ``KMeans(K, tol, random_state=i, over_relaxation=beta)``; the
error is the inertia of the centres before any rounding, in dB against Lloyd's
(plain steps, scikit-learn's tol) on the same crop and seed: positive is lower
error.

    python benchmarks/over_relaxation.py [--crops 30] [-k 256 32]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import photo_crops  # noqa: E402

SETTINGS = ((1.0, 1e-4), (1.0, 0.0), (1.6, 1e-4), (1.8, 1e-4), (1.9, 1e-4))


def crops(n: int):
    """The distinct colours and counts of the n crops batch.py writes as files."""
    from emcore.pipeline import ImageSamples
    return [(s.fit_samples, s.weights) for s in map(ImageSamples, photo_crops(n))]


def main() -> None:
    from emcore import KMeans
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=30)
    parser.add_argument("-k", type=int, nargs="*", default=[256, 32])
    args = parser.parse_args()
    data = crops(args.crops)
    print("| K | over_relaxation | tol | passes (mean) | dB vs Lloyd: mean | min | max |")
    print("|---|---|---|---|---|---|---|")
    for k in args.k:
        lloyd = None
        for beta, tol in SETTINGS:
            passes, inertia = [], []
            for i, (X, w) in enumerate(data):
                model = KMeans(k, tol=tol, random_state=i, n_threads=1,
                               over_relaxation=beta).fit(X, sample_weight=w)
                passes.append(model.n_iter_)
                inertia.append(model.inertia_)
            inertia = np.array(inertia)
            lloyd = inertia if lloyd is None else lloyd
            db = 10 * np.log10(lloyd / inertia)
            print(f"| {k} | {beta} | {tol:g} | {np.mean(passes):.1f} | {db.mean():+.4f} | "
                  f"{db.min():+.4f} | {db.max():+.4f} |", flush=True)


if __name__ == "__main__":
    main()
