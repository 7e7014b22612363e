"""Peak memory of whole jobs, measured as the peak RSS of a fresh process."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _data import DATA, FULL

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the peak RSS from /proc/self/status")

# VmHWM is the peak RSS of this process image; ru_maxrss would carry over the
# parent's peak across fork and exec.
SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from PIL import Image
    from emcore import EM, compute_densities
    im = Image.open(sys.argv[1]).convert("RGB")
    f = int(sys.argv[2])
    img = np.asarray(im.resize((im.width * f, im.height * f), Image.BICUBIC))
    def peak_mib():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    base = peak_mib()
    em = EM(img, 32, unique_colors=sys.argv[3] == "1").fit(5)
    dens = compute_densities(img, em.model_)
    print(json.dumps({"peak_mib": peak_mib(), "before_fit_mib": base,
                      "pixels": img.shape[0] * img.shape[1]}))
""")


@pytest.mark.parametrize("factor", [1, 3] if FULL else [1], ids=lambda f: f"coffee-x{f}")
@pytest.mark.parametrize("unique", [True, False], ids=["unique-colours", "every-pixel"])
def test_peak_rss_of_a_k32_fit(benchmark, factor, unique):
    def run():
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(DATA / "coffee.png"),
                              str(factor), "1" if unique else "0"],
                             capture_output=True, text=True, check=True, timeout=600,
                             cwd=Path(__file__).parent)  # not the repo root (uncompiled emcore/)
        return json.loads(out.stdout)
    benchmark.group = "memory: EM K=32 full, then densities"
    result = benchmark.pedantic(run, rounds=1)
    benchmark.extra_info.update(result)
    # the whole process, Python and numpy included: the budget for 2 MP
    assert result["peak_mib"] < 250, result


BIG_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from PIL import Image
    from emcore import EM, compute_densities
    def peak_mib():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    base = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
    rows = 50_000_000 // base.shape[1]
    img = np.resize(base, (rows, base.shape[1], 3))   # about 50 MP, tiled from the photo
    img[::2, :, 2] ^= 1                                # and not an exact repeat
    before = peak_mib()
    em = EM(img, 32, covariance_type="diag").fit(5)
    labels = em.labels()
    log_density = compute_densities(img, em.model_, log=True)
    assert np.isfinite(log_density).all()
    print(json.dumps({"peak_mib": peak_mib(), "image_mib": img.nbytes / 2**20,
                      "before_fit_mib": before, "pixels": img.shape[0] * img.shape[1]}))
""")


@pytest.mark.skipif(not FULL, reason="50 MP: with EMCORE_BENCH_FULL=1")
def test_peak_rss_50_megapixels(benchmark):
    def run():
        out = subprocess.run([sys.executable, "-c", BIG_SCRIPT, str(DATA / "coffee.png")],
                             capture_output=True, text=True, check=True, timeout=1200,
                             cwd=Path(__file__).parent)
        return json.loads(out.stdout)
    benchmark.group = "memory: 50 MP, EM K=32 diag, labels, log-densities"
    result = benchmark.pedantic(run, rounds=1)
    benchmark.extra_info.update(result)
    n_by_k = result["pixels"] * 32 * 8 / 2**20  # one pixels x components float64 array
    # the image, its labels (8 B/px) and densities (8 B/px) are the bulk; nothing N x K
    assert result["peak_mib"] < result["image_mib"] + 20 * result["pixels"] / 2**20, result
    assert result["peak_mib"] < n_by_k / 4, (result, n_by_k)
