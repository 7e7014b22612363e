"""Per-pixel Gaussian mixture densities with compute_densities.

The numpy question's setting: an RGB image and kernels of (mean, covariance,
weight); then the same scoring with a mixture fitted to the photo.

    python examples/pixel_scoring.py OUT_DIR
"""
import sys
from pathlib import Path

import numpy as np

from emcore import EM, Kernel, compute_densities, load_image, save_image

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
out_dir.mkdir(parents=True, exist_ok=True)
img = load_image(Path(__file__).parent / "data" / "coffee.png").rgb_matrix

# Hand-made kernels: "how espresso-crema-like is each pixel?"
kernels = [
    Kernel(mean=[200, 120, 60], covariance=[400, 300, 300], weight=0.6),       # crema
    Kernel(mean=[[110, 40, 20]], covariance=[[300, 200, 150]], weight=0.4),    # cup red
]
density = compute_densities(img, kernels)
log_density = compute_densities(img, kernels, log=True)  # finite where density underflows
print(f"density range {density.min():.3g} .. {density.max():.3g}; "
      f"log-density range {log_density.min():.1f} .. {log_density.max():.1f}")


def heat(values):
    low, high = np.percentile(values, 1), values.max()
    return np.rint(np.clip((values - low) / (high - low), 0, 1) * 255).astype(np.uint8)


save_image(heat(log_density), out_dir / "kernels-heat.png")

# A mixture fitted to the photo scores its pixels the same way.
em = EM(img, 16, covariance_type="full").fit(30)
save_image(heat(compute_densities(img, em.model_, log=True)), out_dir / "fitted-heat.png")
print(f"wrote {out_dir / 'kernels-heat.png'} and {out_dir / 'fitted-heat.png'}")
