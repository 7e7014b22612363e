"""K-means colour quantization, step by step as in the numpy tutorial, then in one call.

    python examples/quantize_kmeans.py OUT_DIR
"""
import sys
from pathlib import Path

import numpy as np

from emcore import KMeans, load_image, quantize, rgb_vector_to_image, save_image
from emcore.plot import display_images, plot_rgb_vector

out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
out_dir.mkdir(parents=True, exist_ok=True)
img = load_image(Path(__file__).parent / "data" / "chelsea.png")

# The tutorial's sequence: fit on the pixel vector, paint each pixel with its centroid.
kmeans = KMeans(n_clusters=8, random_state=44).fit(img.rgb_vector)
centroids = np.rint(kmeans.cluster_centers_).astype(np.uint8)
quantized = rgb_vector_to_image(centroids[kmeans.labels_], img.shape, title="k = 8")
print(f"k-means: {kmeans.iterations} iterations, inertia {kmeans.inertia_:.4g}")

# The same job in one call, fitted on unique colours weighted by their counts.
q16, palette, labels = quantize(img.rgb_matrix, 16)
save_image(q16, out_dir / "chelsea-16.png")

display_images(img, quantized, q16, titles=["original", "k = 8", "k = 16"],
               path=out_dir / "quantized.png")
plot_rgb_vector(img.rgb_vector, title="pixel colours", path=out_dir / "colours.png")
print(f"wrote {out_dir / 'quantized.png'}, {out_dir / 'colours.png'}, {out_dir / 'chelsea-16.png'}")
