from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sfumato.models.components import Components
from tiny import tiny_components


@pytest.fixture
def sd1() -> Components:
    return tiny_components()
