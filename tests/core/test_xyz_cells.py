"""The X/Y/Z plot's cells: one request per combination of axis values, and the errors a user reads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sfumato.core.errors import InvalidRequest
from sfumato.core.xyz import XYZPlot

BASE = {"prompt": "a <lora:style:0.5> red circle", "seed": 4}


def plot(**axes: Any) -> XYZPlot:
    return XYZPlot.model_validate({"request": BASE, **axes})


def test_cells_cover_every_combination_x_fastest() -> None:
    cells = plot(
        x={"name": "steps", "values": [4, "8"]},
        y={"name": "CFG scale", "values": [3, 7.5]},
        z={"name": "sampler", "values": ["Euler", "DDIM"]},
    ).cells()
    assert [index for index, _ in cells][:3] == [(0, 0, 0), (1, 0, 0), (0, 1, 0)]
    assert len(cells) == 8
    last = cells[-1][1]
    assert (last.steps, last.cfg_scale, last.sampler, last.seed) == (8, 7.5, "DDIM", 4)


def test_prompt_search_and_replace_includes_the_first_value_and_reaches_lora_weights() -> None:
    cells = plot(x={"name": "prompt s/r", "values": ["0.5", "0.8", "1"]}).cells()
    assert [request.prompt for _, request in cells] == [
        "a <lora:style:0.5> red circle",
        "a <lora:style:0.8> red circle",
        "a <lora:style:1> red circle",
    ]


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"x": {"name": "stepz", "values": [1]}}, "unknown axis 'stepz'; choose one of: seed"),
        ({"x": {"name": "steps", "values": ["many"]}}, "steps: Input should be a valid integer"),
        ({"x": {"name": "sampler", "values": ["Euler b"]}}, "unknown sampler 'Euler b'"),
        ({"x": {"name": "prompt s/r", "values": ["blue", "green"]}}, "'blue' is not in the prompt"),
        (
            {
                "x": {"name": "seed", "values": list(range(64))},
                "y": {"name": "steps", "values": [1, 2, 3, 4, 5]},
            },
            "The plot has 320 cells; at most 256",
        ),
    ],
)
def test_bad_axes_say_what_is_wrong(axes: dict[str, Any], message: str) -> None:
    with pytest.raises((InvalidRequest, ValidationError), match=message):
        plot(**axes).cells()
