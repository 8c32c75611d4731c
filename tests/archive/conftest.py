from __future__ import annotations

import pytest
from archive_helpers import MakeItem
from archive_helpers import make_item as _make_item


@pytest.fixture
def make_item() -> MakeItem:
    return _make_item
