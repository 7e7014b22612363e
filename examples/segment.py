"""The seed script: EM segmentation of a photo, as the Rust/PyO3 module was used.

    python examples/segment.py OUT_DIR [IMAGE]
"""
import sys
from pathlib import Path

from emcore import EM, save_new

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
image = sys.argv[2] if len(sys.argv) > 2 else str(Path(__file__).parent / "data" / "coffee.png")
out_dir.mkdir(parents=True, exist_ok=True)

epochs = 30
n_clusters = 32
em = EM(image, n_clusters)
em.fit(epochs)
save_new(em, str(out_dir / "segmented.png"))
print(f"{em.n_iter_} iterations, converged={em.converged_}, "
      f"mean log-likelihood {em.lower_bound_:.4f} -> {out_dir / 'segmented.png'}")
