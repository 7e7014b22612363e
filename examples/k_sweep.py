"""Cost and time against k, the k-means tutorial's closing experiment, in seconds.

    python examples/k_sweep.py OUT_DIR
"""
import sys
from pathlib import Path

from emcore import k_sweep
from emcore.plot import plot_k_metrics

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
out_dir.mkdir(parents=True, exist_ok=True)
photo = Path(__file__).parent / "data" / "astronaut.png"

result = k_sweep(photo, range(2, 33, 2))
for k, cost, seconds in zip(result["k"], result["cost"], result["time"]):
    print(f"k={k:3d}  inertia {cost:.4g}  {seconds * 1e3:.0f} ms")
plot_k_metrics(result["k"], result["cost"], result["time"], cost_name=result["cost_name"],
               path=out_dir / "k-sweep.png")
print(f"total {result['time'].sum():.2f} s -> {out_dir / 'k-sweep.png'}")
