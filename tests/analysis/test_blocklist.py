"""The name blocklist: what it refuses (and lets through) from the library, the CLI and the server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sfumato.analysis.blocklist import load_blocklists, parse_blocklist
from sfumato.cli.main import app
from sfumato.core.errors import BlockedPrompt, InvalidSettings
from sfumato.core.request import GenerationRequest, Hires

# Made-up names, as a user would list real ones: aliases in other scripts after '|'.
SAMPLE = """\
# people (made-up names for the tests)
Jennifer Example | Дженнифер Экзампл | ジェニファー・エグザンプル
Αθηνά Παπαδοπούλου   # Greek only
王小明 | Wang Xiaoming

# fictional characters
Captain Stormwind
"""


@pytest.fixture
def sample_list(tmp_path: Path) -> Path:
    path = tmp_path / "people.txt"
    path.write_text(SAMPLE, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("prompt", "entry"),
    [
        ("a portrait of jennifer example on a beach", "Jennifer Example"),
        ("JENNIFER EXAMPLE, smiling", "Jennifer Example"),
        ("Jénnífer Exámple", "Jennifer Example"),  # diacritics
        ("(jennifer example:1.3), photo", "Jennifer Example"),  # A1111 weight
        ("((Jennifer)) [Example]", "Jennifer Example"),  # emphasis
        ("[jennifer ex:ample:0.5]", "Jennifer Example"),  # scheduled halves of a word
        ("[jennifer ex|ample]", "Jennifer Example"),  # alternated halves
        ("j.e.n.n.i.f.e.r e-x-a-m-p-l-e", "Jennifer Example"),  # letters spelled out
        ("J e n n i f e r  Example", "Jennifer Example"),
        ("<lora:JenniferExample_v2:0.8> a woman", "Jennifer Example"),  # a LoRA's file name
        ("jenniferexample, best quality", "Jennifer Example"),  # an embedding's name
        ("Дженнифер Экзампл на пляже", "Jennifer Example"),  # Cyrillic, as listed
        ("Дженнифер Example", "Jennifer Example"),  # Cyrillic first name, Latin surname
        ("ジェニファー・エグザンプル", "Jennifer Example"),
        ("ΑΘΗΝΆ ΠΑΠΑΔΟΠΟΎΛΟΥ", "Αθηνά Παπαδοπούλου"),  # Greek capitals, other accents
        ("Athina Papadopoulou", "Αθηνά Παπαδοπούλου"),  # transliterated to Latin by the user
        ("王小明在公园", "王小明"),
        ("wang xiaoming in a park", "王小明"),
        ("captain-stormwind cosplay", "Captain Stormwind"),
    ],
)
def test_a_listed_name_is_found_however_it_is_written(sample_list: Path, prompt: str, entry: str) -> None:
    found = load_blocklists([sample_list]).find(prompt)
    assert found is not None and found.entry.name == entry


@pytest.mark.parametrize(
    "prompt",
    [
        "a red circle at the top left",
        "jennifer lawrence",  # a first name alone is not the entry
        "an example of jennifer's style",  # both words, but not as the name
        "captain of a storm-wind ship",
        "",
    ],
)
def test_other_prompts_pass(sample_list: Path, prompt: str) -> None:
    assert load_blocklists([sample_list]).find(prompt) is None


def test_the_refusal_names_the_entry_its_list_and_line(sample_list: Path) -> None:
    blocklist = load_blocklists([sample_list])
    with pytest.raises(BlockedPrompt) as refused:
        blocklist.check(["a cat", "portrait of captain stormwind"])
    assert '"Captain Stormwind" (blocklist people.txt, line 7)' in str(refused.value)


def test_no_list_refuses_nothing() -> None:
    load_blocklists([]).check(["jennifer example"])


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("ok name\nJane | | Doe\n", 2, "an empty name beside a '|'"),
        ("# comment\n\nJo\n", 3, "fewer than 3 letters"),
        ("Alice Example\n!!! | ...\n", 2, "fewer than 3 letters"),
    ],
)
def test_a_list_that_does_not_parse_names_the_line(tmp_path: Path, text: str, line: int, why: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidSettings) as error:
        parse_blocklist(path)
    assert f"line {line}: " in str(error.value) and why in str(error.value)


def test_a_list_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Alice Example\nBob Example\nJosé Example\n".encode("latin-1"))
    with pytest.raises(InvalidSettings, match="line 3: it is not UTF-8 text"):
        parse_blocklist(path)


def test_the_hires_and_detail_prompts_are_checked_too(sample_list: Path) -> None:
    from sfumato.analysis.blocklist import request_prompts

    request = GenerationRequest(
        prompt="a woman",
        negative_prompt="jennifer example",  # avoiding a name is allowed
        hires=Hires(prompt="jennifer example, detailed"),
    )
    with pytest.raises(BlockedPrompt):
        load_blocklists([sample_list]).check(request_prompts(request))
    load_blocklists([sample_list]).check(request_prompts(request.model_copy(update={"hires": None})))


runner = CliRunner()


def test_cli_check_and_validate(sample_list: Path) -> None:
    blocked = runner.invoke(app, ["blocklist", "check", "(jennifer example:1.2)", "--list", str(sample_list)])
    assert blocked.exit_code == 1 and 'blocked: "Jennifer Example" (people.txt, line 2)' in blocked.stdout
    allowed = runner.invoke(app, ["blocklist", "check", "a red circle", "--list", str(sample_list)])
    assert allowed.exit_code == 0 and allowed.stdout.strip() == "allowed"
    counted = runner.invoke(app, ["blocklist", "validate", str(sample_list)])
    assert counted.exit_code == 0 and counted.stdout.strip() == f"{sample_list}: 4 entries"


def test_generate_refuses_a_blocked_prompt_and_writes_nothing(
    sample_list: Path, tiny_model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFUMATO_BLOCKLISTS", f'["{sample_list}"]')
    outputs = tmp_path / "out"
    args = ["--model", str(tiny_model_folder), "--steps", "2", "--seed", "1", "-o", str(outputs)]
    refused = runner.invoke(app, ["generate", "j.e.n.n.i.f.e.r example at a desk", *args])
    assert refused.exit_code == 1
    assert '"Jennifer Example" (blocklist people.txt, line 2)' in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not outputs.exists() or not any(p.is_file() for p in outputs.rglob("*"))
    drawn = runner.invoke(app, ["generate", "a red circle", *args])
    assert drawn.exit_code == 0, drawn.stderr
