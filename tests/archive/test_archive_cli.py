from __future__ import annotations

import json

import pytest
from archive_helpers import MakeItem
from typer.testing import CliRunner

from sfumato.archive.index import Archive, ArchiveIndex
from sfumato.cli.archive import archive_app
from sfumato.core.settings import Settings

runner = CliRunner()


@pytest.fixture
def index() -> ArchiveIndex:
    """The index the CLI finds through Settings() (SFUMATO_DATA_DIR is a temp folder in tests)."""
    return Archive(Settings())


def test_list_json_and_table(index: ArchiveIndex, make_item: MakeItem) -> None:
    index.save(make_item(prompt="a red circle", seed=1))
    index.save(make_item(prompt="a blue square", seed=2))
    result = runner.invoke(archive_app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [item["prompt"] for item in data] == ["a blue square", "a red circle"]
    assert data[0]["seed"] == 2 and data[0]["parameters"].startswith("a blue square\nSteps: 4")

    result = runner.invoke(archive_app, ["list", "--limit", "1"])
    assert result.exit_code == 0
    assert "a blue square" in result.stdout and "a red circle" not in result.stdout


def test_empty_archive_says_so() -> None:
    result = runner.invoke(archive_app, ["list"])
    assert result.exit_code == 0
    assert "The archive is empty" in result.stdout


def test_search(index: ArchiveIndex, make_item: MakeItem) -> None:
    index.save(make_item(prompt="a red circle", seed=1))
    index.save(make_item(prompt="a blue square", seed=2))
    result = runner.invoke(archive_app, ["search", "squ", "--json"])
    assert result.exit_code == 0
    assert [item["seed"] for item in json.loads(result.stdout)] == [2]
    result = runner.invoke(archive_app, ["search", "purple"])
    assert result.exit_code == 0 and "No picture matches 'purple'" in result.stdout


def test_show(index: ArchiveIndex, make_item: MakeItem) -> None:
    record = index.save(make_item(prompt="a red circle", negative_prompt="blurry", seed=1))
    result = runner.invoke(archive_app, ["show", str(record.id)])
    assert result.exit_code == 0
    assert "Negative prompt: blurry" in result.stdout and "Seed: 1" in result.stdout
    data = json.loads(runner.invoke(archive_app, ["show", str(record.id), "--json"]).stdout)
    assert data["file"] == str(index.path_of(record)) and data["negative_prompt"] == "blurry"


def test_unknown_id_is_one_line_exit_1() -> None:
    result = runner.invoke(archive_app, ["show", "42"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: No picture with id 42 in the archive. List them with `sfumato archive list`."
    ]
    assert "Traceback" not in result.output


def test_rebuild(index: ArchiveIndex, make_item: MakeItem) -> None:
    index.save(make_item(seed=1))
    (index.outputs / "notes.txt").write_text("x")
    index.index_path.unlink()
    result = runner.invoke(archive_app, ["rebuild"])
    assert result.exit_code == 0
    assert "Indexed 1 picture from" in result.stdout and "skipped notes.txt" in result.stdout
    assert [item["seed"] for item in json.loads(runner.invoke(archive_app, ["list", "--json"]).stdout)] == [1]
