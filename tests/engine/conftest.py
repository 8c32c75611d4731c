from __future__ import annotations

import pytest

from sfumato.models.components import Components
from tiny import tiny_components


@pytest.fixture(scope="session")
def sd1() -> Components:
    return tiny_components()


@pytest.fixture(scope="session")
def sd1_inpainting() -> Components:
    return tiny_components(inpainting=True)


@pytest.fixture(scope="session")
def sdxl() -> Components:
    return tiny_components(sdxl=True)
