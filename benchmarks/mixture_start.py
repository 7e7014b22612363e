"""GaussianMixture's k-means start: over-relaxed steps beside Lloyd's.

``init_params='kmeans'`` runs k-means to its tolerance before EM
(``emcore.mixture.INIT_OVER_RELAXATION``). For each data set, K in (2, 3, 4, 6, 8),
covariance 'diag' and 'full' and seeds 0 and 1, one thread: the k-means passes
(``KMeans(K, n_init=1, over_relaxation=beta)`` on the same data and seed) and the
mixture's final lower bound (per sample) against that of a start by Lloyd's step;
the fit time of all the mixtures. Data: 20,000 normal samples in 2-D cut into
GridSearchCV's three training folds; blobs (8 centres, std 2.5) for three seeds;
iris; the distinct colours (weighted by their counts) of three bundled photographs.

    python benchmarks/mixture_start.py [--relax 1.0 1.5 1.8]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import load_photo  # noqa: E402


def data_sets() -> dict[str, list[tuple[np.ndarray, np.ndarray | None]]]:
    from sklearn.datasets import load_iris, make_blobs

    from emcore.pipeline import ImageSamples
    normal = np.random.RandomState(1).normal(size=(20000, 2))
    folds = np.arange(len(normal)) % 3
    sets: dict[str, list[tuple[np.ndarray, np.ndarray | None]]] = {
        "normal (GridSearchCV folds)": [(normal[folds != f], None) for f in range(3)],
        "blobs": [(make_blobs(20000, 3, centers=8, cluster_std=2.5, random_state=s)[0], None)
                  for s in range(3)],
        "iris": [(load_iris().data, None)],
        "photo colours": []}
    for name in ("coffee", "astronaut", "chelsea"):
        samples = ImageSamples(load_photo(name), n_threads=1)
        sets["photo colours"].append((samples.fit_samples.astype(np.float64), samples.weights))
    return sets


def run(data, relax: float) -> tuple[list[int], list[float], float]:
    """(k-means passes, final lower bounds, seconds of the mixtures' fits) with the
    mixtures' start taking steps of ``relax``."""
    import emcore.mixture
    from emcore import GaussianMixture, KMeans
    passes, bounds, seconds = [], [], 0.0
    kept = emcore.mixture.INIT_OVER_RELAXATION
    emcore.mixture.INIT_OVER_RELAXATION = relax
    try:
        for X, w in data:
            for k in (2, 3, 4, 6, 8):
                for covariance_type in ("diag", "full"):
                    for seed in (0, 1):
                        start = KMeans(k, n_init=1, random_state=seed, n_threads=1,
                                       over_relaxation=relax).fit(X, sample_weight=w)
                        passes.append(start.n_iter_)
                        begin = time.perf_counter()
                        mixture = GaussianMixture(k, covariance_type=covariance_type,
                                                  random_state=seed, n_threads=1)
                        mixture.fit(X, sample_weight=w)
                        seconds += time.perf_counter() - begin
                        bounds.append(mixture.lower_bound_)
    finally:
        emcore.mixture.INIT_OVER_RELAXATION = kept
    return passes, bounds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relax", type=float, nargs="*", default=[1.0, 1.5, 1.8])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print("| data | step | k-means passes (mean) | lower bound vs Lloyd's start: mean | min "
          "| max | mixtures' fits |")
    print("|---|---|---|---|---|---|---|")
    for name, data in data_sets().items():
        lloyd = None
        for relax in args.relax:
            passes, bounds, seconds = run(data, relax)
            lloyd = np.array(bounds) if lloyd is None else lloyd
            diff = np.array(bounds) - lloyd
            print(f"| {name} | {relax} | {np.mean(passes):.1f} | {diff.mean():+.5f} | "
                  f"{diff.min():+.4f} | {diff.max():+.4f} | {seconds:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
