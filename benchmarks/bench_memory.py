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
