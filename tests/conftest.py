from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def load_photo(name):
    with Image.open(DATA / f"{name}.png") as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="session")
def coffee():
    return load_photo("coffee")


@pytest.fixture(scope="session")
def chelsea():
    return load_photo("chelsea")


@pytest.fixture(scope="session")
def astronaut():
    return load_photo("astronaut")
