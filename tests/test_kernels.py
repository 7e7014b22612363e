"""emcore/_kernels.py: the AVX-512, AVX2 + FMA and portable builds agree.

Results are bitwise independent of the thread count within one build; across
builds they differ only by rounding (FMA contractions; the EM sums' lane count,
8 in the AVX-512 build and 4 in the others): float64 fits and densities to 1e-12
relative, float32 ones to 1e-5 after 20 EM iterations. k-means does the same
arithmetic in the same order in both x86 builds: bitwise the same centres; the
8-bit colour codes (a bit count by instruction or by arithmetic) bitwise the same
colours and indices in every build. Each build runs in its own process
(EMCORE_SIMD picks it at import).
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
import emcore
from emcore import _kernels
img = np.load(sys.argv[1])
out = {"simd": _kernels.SIMD}
for dt in ("float32", "float64"):
    X = img.reshape(-1, 3).astype(dt)
    for cov in ("spherical", "diag", "tied", "full"):
        g = emcore.GaussianMixture(5, covariance_type=cov, random_state=0, max_iter=20,
                                   tol=0).fit(X)
        out[f"{dt} {cov} means"] = g.means_.tolist()
        out[f"{dt} {cov} bound"] = [float(g.lower_bound_)]
        out[f"{dt} {cov} densities"] = emcore.compute_densities(
            img, g, log=True, dtype=dt)[::5, ::5].ravel().tolist()
    km = emcore.KMeans(8, random_state=0).fit(X)
    out[f"{dt} kmeans centres"] = km.cluster_centers_.tolist()
    out[f"{dt} kmeans labels"] = km.labels_.tolist()
    km = emcore.KMeans(64, random_state=0, max_iter=10).fit(X)  # the box-pruned search
    out[f"{dt} kmeans 64 centres"] = km.cluster_centers_.tolist()
    out[f"{dt} kmeans 64 labels"] = km.labels_.tolist()
pixels = np.ascontiguousarray(img.reshape(-1, 3))
colors, present = _kernels.distinct_rgb8(pixels, 2)
spread = np.empty(len(pixels))
_kernels.spread_rgb8(pixels, present, np.arange(len(colors), dtype=np.float64), spread, 2)
out["rgb8 colour labels"] = colors.tolist()
out["rgb8 spread labels"] = spread.tolist()
print(json.dumps(out))
"""


def _run(build, image_path, cwd):
    env = dict(os.environ, EMCORE_SIMD=build)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(image_path)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def builds(chelsea, tmp_path_factory):
    """Each build's results on one photo, by the build EMCORE_SIMD asked for."""
    tmp = tmp_path_factory.mktemp("builds")
    np.save(tmp / "chelsea.npy", chelsea)
    return {build: _run(build, tmp / "chelsea.npy", tmp) for build in ("baseline", "avx2", "auto")}


def _assert_close_to(fast, portable):
    for key in fast:
        if key == "simd":
            continue
        ours, theirs = np.array(fast[key]), np.array(portable[key])
        if key.endswith("labels"):
            np.testing.assert_array_equal(ours, theirs, err_msg=key)
        else:
            rtol = 1e-12 if key.startswith("float64") else 1e-5
            np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-12, err_msg=key)


def test_the_avx2_and_portable_builds_agree(builds):
    assert builds["baseline"]["simd"] == "baseline"
    if builds["avx2"]["simd"] != "avx2":
        pytest.skip("this CPU has no AVX2 + FMA: only the portable build runs here")
    _assert_close_to(builds["avx2"], builds["baseline"])


def test_the_avx512_build_agrees_with_the_others(builds):
    widest, avx2 = builds["auto"], builds["avx2"]
    if widest["simd"] != "avx512":
        pytest.skip("this CPU has no AVX-512: the AVX-512 build does not run here")
    _assert_close_to(widest, builds["baseline"])
    _assert_close_to(widest, avx2)
    for key in widest:
        if "kmeans" in key:
            np.testing.assert_array_equal(np.array(widest[key]), np.array(avx2[key]),
                                          err_msg=key)


def _ulps(got, exact, dtype=np.float64):
    return np.abs(got.astype(np.float64) - exact) / np.abs(
        np.spacing(exact.astype(dtype)).astype(np.float64))


def test_hand_written_exp2_and_log_are_accurate():
    """_vecmath.h's polynomials against numpy's libm, in units in the last place."""
    from emcore import _kernels
    rng = np.random.RandomState(0)
    x = np.concatenate([rng.uniform(-1022, 1024, 300_000), np.arange(-1022, 1024, 0.125),
                        np.nextafter(1024.0, 0) - np.arange(5) * 1e-13])
    exp2, _, _ = _kernels.vecmath_probe(x)
    assert np.isfinite(exp2).all()
    assert _ulps(exp2, np.exp2(x)).max() <= 1.0  # "under 1 ulp" (README): at most 1
    edges, _, _ = _kernels.vecmath_probe(np.array([-1022.5, -2000.0, 1024.0, 1e6]))
    np.testing.assert_array_equal(edges, [0.0, 0.0, np.inf, np.inf])

    xf = np.concatenate([rng.uniform(-125, 0, 300_000),
                         np.arange(-125, 0, 1 / 64)]).astype(np.float32).astype(np.float64)
    _, exp2f, _ = _kernels.vecmath_probe(xf)
    assert _ulps(exp2f, np.exp2(xf), np.float32).max() <= 1.0

    xl = np.concatenate([np.exp(rng.uniform(np.log(1e-307), np.log(1e307), 300_000)),
                         rng.uniform(1, 256, 100_000), [1.0, 2.0, 0.5]])
    _, _, log = _kernels.vecmath_probe(xl)
    exact = np.log(xl)
    close = np.abs(exact) > 0
    assert _ulps(log[close], exact[close]).max() <= 2.0  # "a few ulp"
    assert log[-3] == 0.0
    assert _kernels.vecmath_probe(np.array([0.0]))[2][0] == -np.inf


def _parallel_blocks(lines):
    """(first line, body lines) of each `with ... parallel(` block and each
    `for ... in prange(` loop outside one, by indentation."""
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i]
        if re.search(r"\bparallel\(", line) and line.lstrip().startswith("with") or (
                re.search(r"\bin prange\(", line)):
            indent = len(line) - len(line.lstrip())
            end = i + 1
            while end < len(lines) and (not lines[end].strip() or
                                        len(lines[end]) - len(lines[end].lstrip()) > indent):
                end += 1
            blocks.append((i + 1, lines[i + 1:end]))
            i = end
        else:
            i += 1
    return blocks


def test_no_prange_body_passes_a_shared_scalar_by_address():
    """Cython makes a variable private to each thread only where a parallel body
    assigns it; one the body writes only through its address (`&name`) stays shared
    by every thread, a race (it once made k-means++ pick other centres now and then
    on two threads). Every `&name` in a parallel body must be of a name it assigns."""
    root = os.path.join(os.path.dirname(__file__), "..", "emcore")
    found = []
    for name in sorted(os.listdir(root)):
        if not name.endswith((".pyx", ".pxd")):
            continue
        with open(os.path.join(root, name)) as f:
            lines = [line.split("#")[0].rstrip() for line in f]
        for first, body in _parallel_blocks(lines):
            text = "\n".join(body)
            for scalar in set(re.findall(r"&([A-Za-z_]\w*)\b(?!\s*\[)", text)):
                if not re.search(rf"^\s*{scalar}\s*(=|\+=)[^=]", text, re.MULTILINE):
                    found.append(f"{name}:{first}: &{scalar}")
    assert not found, found


@pytest.mark.parametrize("k", [6, 64])  # below and above the pruned search's threshold
def test_repeated_lloyd_passes_equal_single_checked_passes(coffee, k):
    """LloydPasses (checked once, each pass narrowed by the last one's reach) gives
    bitwise the labels, block sums and inertia of lloyd_pass called afresh each time;
    it reads the arrays it was given even after the caller reshapes its objects, and
    refuses centres or labels that do not fit its samples."""
    from emcore import _kernels
    X = np.ascontiguousarray(coffee.reshape(-1, 3)[::7], dtype=np.float32)
    w = np.random.RandomState(0).rand(len(X))
    bs, nb = 4096, -(-len(X) // 4096)
    passes = _kernels.LloydPasses(X, w, bs, nb, 2)
    original = X.copy()
    X.shape = (-1, 1)  # the caller's object changes shape: the passes keep theirs
    X = X.reshape(-1, 3)
    centers = X[np.random.RandomState(1).choice(len(X), k, replace=False)].copy()
    for _ in range(5):
        labels = np.empty(len(X), dtype=np.int32)
        sums, inertia = passes(centers, labels)
        expected_labels = np.empty(len(X), dtype=np.int32)
        expected_sums, expected_inertia = np.empty((nb, k, 4)), np.empty(nb)
        _kernels.lloyd_pass(original, w, centers, expected_labels, bs, expected_sums,
                            expected_inertia, 1)
        np.testing.assert_array_equal(labels, expected_labels)
        np.testing.assert_array_equal(sums, expected_sums)
        np.testing.assert_array_equal(inertia, expected_inertia)
        total = sums.sum(axis=0)
        centers = (total[:, 1:] / total[:, :1]).astype(np.float32)
    with pytest.raises(_kernels.KernelArgumentError):
        passes(centers.astype(np.float64))
    with pytest.raises(_kernels.KernelArgumentError):
        passes(centers[:, :2].copy())
    with pytest.raises(_kernels.KernelArgumentError):
        passes(centers, np.empty(len(X) - 1, dtype=np.int32))
