from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import IO

import pytest
from archive_helpers import MakeItem, make_image
from PIL.PngImagePlugin import PngInfo

from sfumato.archive import files
from sfumato.archive.index import ArchiveIndex, ArchiveIndexError, RecordNotFound
from sfumato.core.errors import OutputError, SfumatoError


@pytest.fixture
def index(tmp_path: Path) -> ArchiveIndex:
    return ArchiveIndex(tmp_path / "outputs", tmp_path / "data" / "index.sqlite")


def _fill(index: ArchiveIndex, make_item: MakeItem) -> None:
    index.save(make_item(prompt="a red circle", seed=1), "png")
    index.save(make_item(prompt="a blue square", negative_prompt="red", seed=2), "jpeg")
    index.save(make_item(prompt="a green triangle at the top", seed=3, sampler="Euler"), "webp")


def test_save_lists_newest_first_and_shows_by_id(index: ArchiveIndex, make_item: MakeItem) -> None:
    _fill(index, make_item)
    records = index.list()
    assert [r.prompt for r in records] == ["a green triangle at the top", "a blue square", "a red circle"]
    assert [r.prompt for r in index.list(limit=1, offset=1)] == ["a blue square"]
    first = index.get(records[-1].id)
    assert (first.seed, first.model, first.size, first.source) == (1, "demo", "64x64", "sfumato")
    assert first.path.endswith("-1-a-red-circle.png") and "/" in first.path  # under a dated folder
    assert index.path_of(first).is_file()
    assert first.parameters.startswith("a red circle\nSteps: 4, Sampler: DPM++ 2M")
    with pytest.raises(RecordNotFound, match="No picture with id 99"):
        index.get(99)


def test_search_by_prompt_negative_and_settings(index: ArchiveIndex, make_item: MakeItem) -> None:
    _fill(index, make_item)
    assert {r.prompt for r in index.search("red")} == {"a red circle", "a blue square"}  # prompt or negative
    # Words match as prefixes, and every word must match.
    assert [r.prompt for r in index.search("tri top")] == ["a green triangle at the top"]
    assert [r.prompt for r in index.search("Sampler: Euler")] == ["a green triangle at the top"]
    assert index.search("purple") == []
    assert [r.seed for r in index.search('(circle) "red:')] == [1]  # query syntax is taken literally
    with pytest.raises(SfumatoError, match="Nothing to search for"):
        index.search("  ,, ")


def test_rebuild_reproduces_the_index_from_the_files(index: ArchiveIndex, make_item: MakeItem) -> None:
    _fill(index, make_item)
    before = index.list()
    index.index_path.unlink()
    rebuilt = ArchiveIndex(index.outputs, index.index_path)
    report = rebuilt.rebuild()
    assert report.indexed == 3 and report.skipped == []
    assert rebuilt.list() == before
    assert [r.seed for r in rebuilt.search("circle")] == [1]


def test_rebuild_reads_other_tools_and_reports_what_it_skips(
    index: ArchiveIndex, make_item: MakeItem
) -> None:
    index.save(make_item(), "png")
    info = PngInfo()
    info.add_text("parameters", "a forest\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 32x32")
    make_image(32, 32).save(index.outputs / "from-a1111.png", pnginfo=info)
    make_image(32, 32).save(index.outputs / "plain.png")
    (index.outputs / "notes.txt").write_text("hello")
    (index.outputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (index.outputs / f"{files.TEMP_PREFIX}left-by-a-crash{files.TEMP_SUFFIX}").write_bytes(b"partial")
    report = index.rebuild()
    assert report.indexed == 2
    assert sorted(path for path, _ in report.skipped) == ["broken.png", "notes.txt", "plain.png"]
    assert dict(report.skipped)["plain.png"] == "no generation settings in it"
    (found,) = index.search("forest")
    assert (found.source, found.seed, found.path) == ("a1111", 9, "from-a1111.png")


def test_failed_write_leaves_the_index_unchanged(
    index: ArchiveIndex, make_item: MakeItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    index.save(make_item(seed=1))
    before = index.list()

    def disk_full(handle: IO[bytes], data: bytes) -> None:
        handle.write(data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_write_bytes", disk_full)
    with pytest.raises(OutputError, match="disk is full"):
        index.save(make_item(seed=2))
    assert index.list() == before
    assert sorted(p.name for p in index.outputs.rglob("*") if p.is_file()) == [Path(before[0].path).name]


NAMES = ("alpha", "bravo", "charlie", "delta")


def test_saves_from_several_threads(index: ArchiveIndex, make_item: MakeItem) -> None:
    errors: list[BaseException] = []

    def worker(thread: int) -> None:
        try:
            for n in range(4):
                index.save(
                    make_item(prompt=f"{NAMES[thread]} picture {n}", seed=thread * 10 + n), subfolder="same"
                )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    records = index.list(limit=100)
    assert len(records) == 16
    assert len({r.path for r in records}) == 16
    assert sorted(p.name for p in (index.outputs / "same").iterdir()) == sorted(
        Path(r.path).name for r in records
    )
    assert len(index.search("charlie")) == 4


def test_saves_from_two_processes(index: ArchiveIndex, make_item: MakeItem) -> None:
    """A server worker and a CLI at once: another process saves while this one does."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from archive_helpers import make_item
        from sfumato.archive.index import ArchiveIndex
        index = ArchiveIndex({str(index.outputs)!r}, {str(index.index_path)!r})
        for n in range(6):
            index.save(make_item(prompt="other process", seed=100 + n), subfolder="same")
        """
    )
    other = subprocess.Popen([sys.executable, "-c", script])
    for n in range(6):
        index.save(make_item(prompt="this process", seed=n), subfolder="same")
    assert other.wait(timeout=120) == 0
    records = index.list(limit=100)
    assert len(records) == 12 == len({r.path for r in records})
    assert len(index.search("other process")) == 6
    with sqlite3.connect(index.index_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_corrupt_index_is_a_clear_error_and_rebuild_repairs_it(
    index: ArchiveIndex, make_item: MakeItem
) -> None:
    index.save(make_item())
    index.close()
    index.index_path.write_bytes(b"this is not a database" * 100)
    fresh = ArchiveIndex(index.outputs, index.index_path)
    with pytest.raises(ArchiveIndexError, match="rebuild"):
        fresh.list()
    assert fresh.rebuild().indexed == 1
    assert [r.prompt for r in fresh.list()] == ["a red circle"]
    assert any(p.name.startswith("index.sqlite.corrupt-") for p in index.index_path.parent.iterdir())


def test_record_json_is_plain_data(index: ArchiveIndex, make_item: MakeItem) -> None:
    record = index.save(make_item())
    data = json.loads(json.dumps(record.to_json()))
    assert data["prompt"] == "a red circle" and data["id"] == record.id and data["seed"] == 42
