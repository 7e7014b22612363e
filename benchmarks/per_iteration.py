"""The README's speed table: emcore beside the fastest peers, per iteration, equal threads.

    python benchmarks/per_iteration.py            # needs pip install '.[bench]'
    python benchmarks/per_iteration.py densities  # only the compute_densities rows
    python benchmarks/per_iteration.py colours    # only EM on distinct colours (below)

For each photo and thread count (one each, then all cores each), every
library fits from the same start; the time of 11 iterations minus the time of
1, divided by 10, is its time per iteration (best of 3 runs each). Every result
is checked against a float64 numpy recomputation of the same iterations from
the same start (centres and means within TOLERANCE; the largest difference is
printed in the last column), so that every
library did the same work. compute_densities is one call, not an iteration:
its rows compare whole calls, on the 8-bit photo as it comes (emcore scores each
distinct colour once and spreads the values back; bitwise the values of scoring
every pixel) and on the same pixels as float64 (every pixel scored). Photos:
coffee upscaled to 2.2 MP (bright, smooth) and scikit-image's Hubble deep field
(0.87 MP, mostly dark).
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import load_photo  # noqa: E402
from _peers import (em_emcore, em_onedal, em_sklearn, em_start, lloyd_emcore,  # noqa: E402
                    lloyd_faiss, lloyd_onedal, lloyd_sklearn, per_iteration, reference_em,
                    reference_lloyd)
from bench_densities import diag_kernels, numpy_densities  # noqa: E402

from emcore import _kernels, compute_densities, unique_colors  # noqa: E402
from emcore._threads import usable_cores  # noqa: E402

K = 32
#: grey levels a result may be from the float64 recomputation after 11 iterations:
#: float32 sums drift (oneDAL's EM by up to about 0.1), a different algorithm or a
#: skipped iteration moves centres by whole levels
TOLERANCE = 0.5


def jittered(img):
    """float32 pixels plus fixed sub-unit noise: no exact ties for libraries to break
    differently, so every library's result can be checked against one reference."""
    X = img.reshape(-1, 3).astype(np.float64)
    return (X + np.random.RandomState(7).uniform(-0.5, 0.5, X.shape)).astype(np.float32)


def photos():
    from skimage import data
    return {"coffee 2.2 MP": load_photo("coffee", 3), "hubble 0.87 MP": data.hubble_deep_field()}


def check(name, got, reference):
    error = float(np.abs(np.asarray(got, dtype=np.float64) - reference).max())
    if error > TOLERANCE:
        raise AssertionError(f"{name}: {error:.3g} grey levels from the float64 recomputation")
    return error


def row(work, photo, library, threads, seconds, n_units, error):
    ns = seconds / n_units * 1e9 * threads  # per unit and per core
    print(f"| {work} | {photo} | {library} | {threads} | {seconds * 1e3:.1f} | {ns:.2f} | "
          f"{error:.1e} |", flush=True)
    return seconds


def main(parts=("lloyd-em", "densities", "colours")):
    all_cores = usable_cores()
    print(f"{K} components, float32, per iteration = (t(11) - t(1)) / 10, best of 3 runs; "
          f"{all_cores} usable cores; emcore's {_kernels.SIMD} kernel build\n")
    print("| work | photo | library | threads | ms per iteration | ns per pixel-component "
          "per core | max difference from float64 |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for photo, img in (photos().items() if "lloyd-em" in parts else ()):
        X = jittered(img)
        init = X[np.random.RandomState(0).choice(len(X), K, replace=False)]
        ref = reference_lloyd(X, init, 11)
        for threads in (1, all_cores):
            times = {}
            for library, run in (("emcore", lloyd_emcore), ("faiss", lloyd_faiss),
                                 ("oneDAL", lloyd_onedal), ("scikit-learn", lloyd_sklearn)):
                seconds, centres = per_iteration(lambda n: run(X, init, n, threads))
                error = check(f"Lloyd {library}", centres, ref)
                times[library] = row("Lloyd", photo, library, threads, seconds, len(X) * K,
                                     error)
            ratios.append(("Lloyd", photo, threads, times))
        start = em_start(X, K)
        for cov_type in ("diag", "full"):
            ref = reference_em(X, start, 11, cov_type)
            for threads in (1, all_cores):
                times = {}
                peers = [("emcore", em_emcore), ("oneDAL", em_onedal)]
                if photo.startswith("hubble"):  # scikit-learn: seconds per iteration, one photo
                    peers.append(("scikit-learn", em_sklearn))
                for library, run in peers:
                    seconds, means = per_iteration(
                        lambda n: run(X, start, n, threads, cov_type),
                        repeat=1 if library == "scikit-learn" else 3)
                    error = check(f"EM {cov_type} {library}", means, ref)
                    times[library] = row(f"EM {cov_type}", photo, library, threads, seconds,
                                         len(X) * K, error)
                ratios.append((f"EM {cov_type}", photo, threads, times))
    if "densities" in parts:
        densities_rows(all_cores, ratios)
    if "colours" in parts:
        colour_rows(all_cores, ratios)
    print("\n| work | photo | threads each | emcore faster than |")
    print("|---|---|---|---|")
    for work, photo, threads, times in ratios:
        others = ", ".join(f"{lib} {t / times['emcore']:.1f}x" for lib, t in times.items()
                           if lib != "emcore")
        print(f"| {work} | {photo} | {threads} | {others} |")


def densities_rows(all_cores, ratios):
    """compute_densities against the numpy broadcast formulation, one call each: the
    8-bit photo as it comes (emcore scores each of its 61,594 distinct colours once)
    and the same pixels as float64 (emcore scores every pixel, as numpy does)."""
    img = photos()["hubble 0.87 MP"]
    kernels = diag_kernels(img, K)
    numpy_seconds = np.inf  # the same float64 work for both inputs; best of 3 like emcore
    for _ in range(3):
        t0 = time.perf_counter()
        expected = numpy_densities(img, kernels)
        numpy_seconds = min(numpy_seconds, time.perf_counter() - t0)
    n_units = img.shape[0] * img.shape[1] * K
    for threads in (1, all_cores):
        for given, pixels in (("8-bit photo", img), ("float64 pixels", img.astype(np.float64))):
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                out = compute_densities(pixels, kernels, n_threads=threads)
                best = min(best, time.perf_counter() - t0)
            np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-300)
            error = float(np.max(np.abs(out - expected) / np.maximum(expected, 1e-300)))
            work = f"densities (one call), {given}"
            times = {"emcore": row(work, "hubble 0.87 MP", "emcore", threads, best, n_units,
                                   error)}
            # numpy's broadcast formulation runs on one thread whatever it is given
            times["numpy"] = row(work, "hubble 0.87 MP", "numpy", 1, numpy_seconds, n_units, 0)
            ratios.append((f"densities, {given}", "hubble 0.87 MP", threads, times))


def colour_rows(all_cores, ratios):
    """EM as emcore's image pipeline runs it: on the photo's distinct colours weighted
    by their counts, beside oneDAL on every pixel (which takes no weights). Not
    equal work, the same answer: both are checked against the float64 recomputation
    on every pixel. The pixels are not jittered here (jitter would make every colour
    distinct; EM's soft assignments have no ties to break)."""
    img = photos()["coffee 2.2 MP"]
    X = img.reshape(-1, 3).astype(np.float32)
    colors, counts, _ = unique_colors(img.reshape(-1, 3))
    colors, counts = colors.astype(np.float32), counts.astype(np.float64)
    start = em_start(X, K)
    ref = reference_em(X, start, 11, "diag")
    work = f"EM diag, {len(colors):,} distinct colours weighted"
    for threads in (1, all_cores):
        times = {}
        for library, run in (
                ("emcore", lambda n: em_emcore(colors, start, n, threads, "diag", counts)),
                ("oneDAL", lambda n: em_onedal(X, start, n, threads, "diag"))):
            seconds, means = per_iteration(run)
            error = check(f"{work} {library}", means, ref)
            times[library] = row(work if library == "emcore" else "EM diag, every pixel",
                                 "coffee 2.2 MP", library, threads, seconds, len(X) * K, error)
        ratios.append((work, "coffee 2.2 MP", threads, times))


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("lloyd-em", "densities", "colours"))
