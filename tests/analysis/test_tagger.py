"""The tagger mode: a WD14-style ONNX tagger run by onnxruntime (a tiny hand-built graph stands in)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sfumato.analysis.tagger import tag_picture
from sfumato.core.errors import CorruptModelFile, ModelNotFound

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

TAGS = (
    "tag_id,name,category,count\n1,red_thing,0,10\n2,blue_thing,0,10\n3,some_character,4,5\n4,general,9,100\n"
)


def _write_tagger(folder: Path) -> Path:
    """Scores: mean red -> red_thing, mean blue -> blue_thing (BGR input, 0-255, NHWC, as WD14 takes it)."""
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir()
    weights = np.zeros((3, 4), np.float32)
    weights[2, 0] = weights[0, 1] = 0.05  # channel 2 is red in BGR, channel 0 blue
    weights[:, 2] = -1.0  # the character never reaches its threshold
    bias = np.array([-6.0, -6.0, 0.0, 3.0], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input", "axes"], ["mean"], keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["logits"]),
            helper.make_node("Add", ["logits", "b"], ["biased"]),
            helper.make_node("Sigmoid", ["biased"], ["output"]),
        ],
        "tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 16, 16, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])],
        [
            numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
            numpy_helper.from_array(weights, "w"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "selected_tags.csv").write_text(TAGS, encoding="utf-8")
    return folder


def test_tags_follow_the_picture(tmp_path: Path) -> None:
    folder = _write_tagger(tmp_path / "tagger")
    red = tag_picture(Image.new("RGB", (40, 30), (250, 10, 10)), folder)
    assert [t.name for t in red] == ["general", "red thing"] and red[0].category == "rating"
    blue = tag_picture(Image.new("RGB", (30, 40), (10, 10, 250)), folder)
    assert [t.name for t in blue] == ["general", "blue thing"]


def test_a_broken_tagger_folder_says_what_is_needed(tmp_path: Path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelNotFound, match=r"lacks selected_tags.csv"):
        tag_picture(Image.new("RGB", (8, 8)), folder)
    (folder / "selected_tags.csv").write_text(TAGS, encoding="utf-8")
    with pytest.raises(CorruptModelFile, match="not an ONNX model"):
        tag_picture(Image.new("RGB", (8, 8)), folder)
