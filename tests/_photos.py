"""The bundled photographs, for the tests (a module name of its own: benchmarks/ has a
conftest.py too, and two modules named conftest cannot both be imported)."""
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def load_photo(name):
    with Image.open(DATA / f"{name}.png") as im:
        return np.asarray(im.convert("RGB"))
