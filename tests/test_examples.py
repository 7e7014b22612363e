"""Every example runs on the bundled photos and writes what it says."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

OUTPUTS = {
    "segment.py": ["segmented.png"],
    "quantize_kmeans.py": ["quantized.png", "colours.png", "chelsea-16.png"],
    "pixel_scoring.py": ["kernels-heat.png", "fitted-heat.png"],
    "k_sweep.py": ["k-sweep.png"],
}


@pytest.mark.parametrize("script", sorted(OUTPUTS))
def test_example_runs(tmp_path, script):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    for name in OUTPUTS[script]:
        im = np.asarray(PILImage.open(tmp_path / name).convert("RGB"))
        assert im.size > 0 and im.std() > 1, name


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(OUTPUTS)
