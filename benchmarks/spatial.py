"""Spatial segmentation beside dipy's and ANTs' HMRF segmentation, on phantoms.

    python benchmarks/spatial.py [--volume N] [--threads T] [--quick]

Phantoms with known labels (benchmarks/_phantoms.py): 2-D 256 x 256 images with
3 and 5 grey classes and 4 colour classes, and an N^3 volume (default 64) with 3
classes, each at several noise levels. For each: pixel accuracy (labels matched
to the truth by the best permutation), mean Dice over the classes, and seconds,
for

- the per-pixel Bayes limit (true means and variance, the classes' true shares;
  grey images only) and emcore's per-pixel GaussianMixture;
- emcore's SpatialGaussianMixture with its defaults (mean-field, beta 1.5), and
  with ``e_step='icm'``;
- dipy's TissueClassifierHMRF (ICM; grey images only) and ANTs' Atropos
  (antspyx, k-means start, MRF over the axis neighbours), each at the best of a
  small grid of its smoothing strengths, chosen per image by the true labels
  (an advantage emcore does not get).

Every method runs on ``--threads`` threads (1 by default; dipy has one).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _phantoms import bayes_labels, best_permutation_accuracy, phantom  # noqa: E402

DIPY_BETAS = (0.1, 0.5, 1.0)
ANTS_MRF = (0.1, 0.3, 0.5)


def dice(predicted, truth, n_classes):
    """Mean Dice over the classes, after the best label permutation."""
    import itertools
    best = 0.0
    for perm in itertools.permutations(range(n_classes)):
        mapped = np.where(predicted >= 0, np.array(perm)[np.maximum(predicted, 0)], -1)
        scores = [2 * np.sum((mapped == c) & (truth == c))
                  / max(np.sum(mapped == c) + np.sum(truth == c), 1) for c in range(n_classes)]
        best = max(best, float(np.mean(scores)))
    return best


def timed(fn):
    start = time.perf_counter()
    labels = fn()
    return labels, time.perf_counter() - start


def emcore_methods(image, n_classes, dims, threads):
    from emcore import GaussianMixture, SpatialGaussianMixture
    X = image.reshape(-1, 1 if image.ndim == dims else image.shape[-1])
    yield "emcore per-pixel GMM", lambda: GaussianMixture(
        n_classes, random_state=0, n_threads=threads).fit(X).predict(X).reshape(
        image.shape[:dims])
    for e_step in ("mean-field", "icm"):
        yield f"emcore spatial ({e_step})", lambda e=e_step: SpatialGaussianMixture(
            n_classes, e_step=e, spatial_dims=dims, random_state=0,
            n_threads=threads).fit(image).labels_


def dipy_method(image, n_classes, dims, beta):
    from dipy.segment.tissue import TissueClassifierHMRF
    volume = image[:, :, None] if dims == 2 else image
    out = TissueClassifierHMRF(verbose=False).classify(volume, n_classes, beta, max_iter=100)
    labels = out[1].astype(int) - 1
    return labels[:, :, 0] if dims == 2 else labels


def ants_method(image, n_classes, dims, strength):
    import ants
    channels = image.ndim > dims
    planes = [image[..., c] for c in range(image.shape[-1])] if channels else [image]
    inputs = [ants.from_numpy(np.ascontiguousarray(p, dtype=np.float32)) for p in planes]
    mask = ants.from_numpy(np.ones(image.shape[:dims], dtype=np.float32))
    radius = "x".join(["1"] * dims)
    out = ants.atropos(a=inputs if channels else inputs[0], x=mask,
                       i=f"kmeans[{n_classes}]", m=f"[{strength},{radius}]", c="[5,0]")
    return out["segmentation"].numpy().astype(int) - 1


def cases(volume, quick):
    sigmas = (20, 40) if quick else (20, 30, 40)
    for sigma in sigmas:
        yield "2-D, 3 grey classes", (256, 256), 3, 1, sigma
    for sigma in sigmas:
        yield "2-D, 5 grey classes", (256, 256), 5, 1, sigma
    for sigma in sigmas:
        yield "2-D, 4 colour classes", (256, 256), 4, 3, sigma
    for sigma in sigmas:
        yield f"3-D {volume}^3, 3 grey classes", (volume,) * 3, 3, 1, sigma


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=64, help="side of the 3-D phantom")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="two noise levels")
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args(argv)
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(args.threads)
    print("| phantom | noise sigma | method | accuracy | mean Dice | seconds |")
    print("|---|---|---|---|---|---|")
    for name, shape, n_classes, n_channels, sigma in cases(args.volume, args.quick):
        image, truth, means = phantom(shape, sigma, n_classes=n_classes, n_channels=n_channels)
        dims = len(shape)
        rows = []
        if n_channels == 1:
            shares = np.bincount(truth.ravel(), minlength=n_classes) / truth.size
            rows.append(("Bayes per-pixel limit", bayes_labels(image, means, sigma, shares), 0.0))
        for label, fn in emcore_methods(image, n_classes, dims, args.threads):
            rows.append((label, *timed(fn)))
        if not args.no_peers:
            peers = [("ANTs Atropos MRF", ANTS_MRF, ants_method)]
            if n_channels == 1:
                peers.insert(0, ("dipy HMRF beta", DIPY_BETAS, dipy_method))
            for label, grid, method in peers:
                tried = [(value, *timed(lambda v=value: method(image, n_classes, dims, v)))
                         for value in grid]
                value, labels, seconds = max(
                    tried, key=lambda t: best_permutation_accuracy(t[1], truth, n_classes))
                rows.append((f"{label} {value} (best of {len(grid)})", labels, seconds))
        for label, labels, seconds in rows:
            print(f"| {name} | {sigma} | {label} | "
                  f"{100 * best_permutation_accuracy(labels, truth, n_classes):.1f}% | "
                  f"{dice(labels, truth, n_classes):.3f} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
