import pytest
from _photos import load_photo


@pytest.fixture(scope="session")
def coffee():
    return load_photo("coffee")


@pytest.fixture(scope="session")
def chelsea():
    return load_photo("chelsea")


@pytest.fixture(scope="session")
def astronaut():
    return load_photo("astronaut")
