"""Phantoms with known labels for the spatial segmentation benchmarks.

A background, a large ellipse (or ellipsoid) and disks (or balls) of the other
classes scattered over it, each class one grey level (or one colour), with
Gaussian noise added. Everything is drawn from a seeded generator.
"""
from __future__ import annotations

import numpy as np


def phantom_labels(shape, n_classes=3, n_blobs=12, seed=0):
    """Integer labels 0 .. n_classes - 1 on a 2-D or 3-D grid of ``shape``."""
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*(np.arange(s, dtype=float) for s in shape), indexing="ij")
    centre = [s / 2 for s in shape]
    radii = [s * r for s, r in zip(shape, (0.38, 0.30, 0.34)[:len(shape)])]
    inside = sum(((a - c) / r) ** 2 for a, c, r in zip(axes, centre, radii)) <= 1
    labels = np.where(inside, 1 % n_classes, 0).astype(np.intp)
    for blob in range(n_blobs):
        where = [rng.uniform(0.15, 0.85) * s for s in shape]
        radius = rng.uniform(*((0.03, 0.09) if len(shape) == 2 else (0.06, 0.16))) * min(shape)
        disk = sum((a - c) ** 2 for a, c in zip(axes, where)) <= radius ** 2
        labels[disk] = 2 + blob % max(1, n_classes - 2) if n_classes > 2 else blob % 2
    return labels


def phantom(shape, sigma, n_classes=3, n_channels=1, seed=0):
    """(image float64 of shape + (n_channels,) or shape, labels, class means)."""
    labels = phantom_labels(shape, n_classes, seed=seed)
    rng = np.random.default_rng(seed + 1)
    if n_channels == 1:
        means = np.linspace(60, 180, n_classes)[:, None]
    else:  # classes apart in every channel, in a different order per channel
        means = np.stack([rng.permutation(np.linspace(60, 180, n_classes))
                          for _ in range(n_channels)], axis=1)
    image = means[labels] + rng.normal(0, sigma, labels.shape + (n_channels,))
    return (image[..., 0] if n_channels == 1 else image), labels, means


def best_permutation_accuracy(predicted, truth, n_classes):
    """Pixel accuracy after matching predicted labels to true ones (the best of all
    permutations; -1 predictions count as wrong)."""
    import itertools
    confusion = np.zeros((n_classes, n_classes))
    valid = predicted >= 0
    np.add.at(confusion, (predicted[valid], truth[valid]), 1)
    best = max(sum(confusion[p, t] for t, p in enumerate(perm))
               for perm in itertools.permutations(range(n_classes)))
    return best / truth.size


def bayes_labels(image, means, sigma, weights):
    """Per-pixel Bayes labels under the true parameters (grey, equal variances)."""
    x = np.asarray(image, float)[..., None]
    score = -((x - means[:, 0]) ** 2) / (2 * sigma ** 2) + np.log(weights)
    return score.argmax(axis=-1)
