"""How far the image pipeline's default palette is from the best k-means palette found.

For each photograph (and two synthetic images: a smooth two-colour ramp and a
colour wheel) and each number of colours, a long search looks for the palette of
integers with the least squared error, undithered, every pixel on its nearest
entry:

- restarts: k-means++ from several seeds, Lloyd to strict convergence (tol=0),
  each seed twice: plain Lloyd and over-relaxed (over_relaxation=1.8, the
  pipeline's default, which often ends lower);
- libimagequant's palette as one more start, then the same Lloyd;
- random swaps on the best of those (a centre moved to a sample drawn by weight,
  a few Lloyd iterations, kept when the error falls);
- every candidate finished by emcore.kmeans.lattice_lloyd (centres on integers).

The gap is the default's PSNR below the best found (0: the default is the best
found); the same for ``n_init=10`` (ten k-means++ restarts, the CLI's ``--n-init
10``). Everything runs on the distinct colours weighted by their counts,
which is exactly the every-pixel problem.

    python benchmarks/optimum_gap.py                  # K = 32 and 256, 7 photos + 2 synthetic
    python benchmarks/optimum_gap.py -k 32 --swaps 50 --photos coffee

Needs the bench extra (imagequant, scikit-image).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import photographs, psnr  # noqa: E402

THREADS = os.cpu_count() or 1


def synthetic() -> dict[str, np.ndarray]:
    """A 512x512 ramp between two colours and a 512x512 hue-saturation wheel."""
    t = np.linspace(0, 1, 512)
    a, b = np.array([20.0, 40.0, 120.0]), np.array([250.0, 200.0, 90.0])
    ramp = np.broadcast_to((a + (b - a) * t[:, None])[None], (512, 512, 3))
    y, x = np.mgrid[-1:1:512j, -1:1:512j]
    hue = (np.arctan2(y, x) / (2 * np.pi)) % 1.0
    sat = np.clip(np.hypot(x, y), 0, 1)
    sector = hue[..., None] * 6 - np.arange(3)[[0, 2, 1]] * 2
    rgb = np.clip(np.abs((sector % 6) - 3) - 1, 0, 1)
    wheel = 255 * (1 - sat[..., None] + sat[..., None] * rgb)
    return {"ramp (synthetic)": np.rint(ramp).astype(np.uint8),
            "wheel (synthetic)": np.rint(wheel).astype(np.uint8)}


def to_psnr(inertia: float, n_values: int) -> float:
    return float(10 * np.log10(255.0 ** 2 * n_values / inertia)) if inertia > 0 else np.inf


class Search:
    """The long search on one image's distinct colours."""

    def __init__(self, img: np.ndarray, k: int):
        from emcore.image import unique_colors
        colors, counts = unique_colors(img.reshape(-1, 3))[:2]
        self.X = np.ascontiguousarray(colors, dtype=np.float32)
        self.w = counts.astype(np.float64)
        self.k = min(k, len(colors))
        self.n_values = img.size

    def polished(self, **kmeans) -> tuple[float, np.ndarray]:
        """(inertia, centres) of KMeans(**kmeans) on the colours, then put on integers."""
        from emcore import KMeans
        from emcore.kmeans import lattice_lloyd
        model = KMeans(self.k, **kmeans).fit(self.X, sample_weight=self.w)
        centers, _, inertia = lattice_lloyd(self.X, self.w, model.cluster_centers_, 1, 0, 255,
                                            THREADS)
        return inertia, centers

    def finish(self, start: np.ndarray) -> tuple[float, np.ndarray]:
        """Lloyd to strict convergence from ``start``, on integers."""
        return self.polished(init=start.astype(np.float32), tol=0.0, max_iter=1000)

    def restarts(self, seeds: int) -> list[tuple[float, np.ndarray]]:
        return [self.polished(random_state=seed, tol=0.0, max_iter=1000,
                              over_relaxation=relax)
                for seed in range(seeds) for relax in (1.0, 1.8)]

    def from_imagequant(self, img: np.ndarray) -> tuple[float, np.ndarray]:
        import imagequant
        indexed = imagequant.quantize_pil_image(Image.fromarray(img).convert("RGBA"),
                                                dithering_level=0.0, max_colors=self.k)
        palette = np.array(indexed.getpalette()[:3 * self.k], dtype=np.float64).reshape(-1, 3)
        if len(palette) < self.k:  # fewer entries than asked: fill from the samples
            extra = self.X[np.random.RandomState(0).choice(len(self.X), self.k - len(palette))]
            palette = np.concatenate([palette, extra])
        return self.finish(palette)

    def swaps(self, best: tuple[float, np.ndarray], n_swaps: int,
              seed: int = 0) -> tuple[float, np.ndarray]:
        rng = np.random.RandomState(seed)
        p = self.w / self.w.sum()
        for _ in range(n_swaps):
            start = best[1].copy()
            start[rng.randint(self.k)] = self.X[rng.choice(len(self.X), p=p)]
            tried = self.polished(init=start.astype(np.float32), tol=0.0, max_iter=8)
            if tried[0] < best[0]:
                best = tried
        return best


def main(argv=None):
    import warnings

    from emcore import segment_image
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", type=int, nargs="*", default=[32, 256])
    parser.add_argument("--photos", nargs="*", default=None)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--swaps", type=int, default=200)
    args = parser.parse_args(argv)
    images = {**photographs(args.photos), **({} if args.photos else synthetic())}
    warnings.simplefilter("ignore")  # ConvergenceWarnings of the short swap fits
    print("| image | K | default dB (ms) | n_init=10 dB (ms) | best found dB | gap of the "
          "default | gap of n_init=10 | found by | search s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in args.k:
        for name, img in images.items():
            runs = []
            for n_init in (1, 10):
                t0 = time.perf_counter()
                seg = segment_image(img, k, n_init=n_init)
                runs.append((psnr(img, seg.image), (time.perf_counter() - t0) * 1e3))
            t0 = time.perf_counter()
            search = Search(img, k)
            found = [(r, f"restart {i // 2}{' relaxed' if i % 2 else ''}")
                     for i, r in enumerate(search.restarts(args.restarts))]
            found.append((search.from_imagequant(img), "libimagequant start"))
            (inertia, centers), how = min(found, key=lambda f: f[0][0])
            swapped = search.swaps((inertia, centers), args.swaps)
            if swapped[0] < inertia:
                inertia, how = swapped[0], how + " + swaps"
            best = max(to_psnr(inertia, search.n_values), *(p for p, _ in runs))
            (default, ms), (restarted, ms10) = runs
            print(f"| {name} | {k} | {default:.3f} ({ms:.0f}) | {restarted:.3f} ({ms10:.0f}) | "
                  f"{best:.3f} | {best - default:.3f} | {best - restarted:.3f} | {how} | "
                  f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
