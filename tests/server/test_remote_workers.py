"""`sfumato worker` on "another machine" (a process on loopback) runs the server's jobs: the pictures land
in the server's archive with their recipes, a worker that dies loses its job to another, bad tokens and a
server that is gone end the worker with a message."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from server_helpers import free_port, live_server
from typer.testing import CliRunner

from sfumato.archive.index import ArchiveIndex
from sfumato.archive.metadata import read_metadata
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.events import JobEvent, JobProgress
from sfumato.server import create_app
from sfumato.server.context import ServerConfig

pytestmark = pytest.mark.timeout(300)

TOKEN = "worker-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def models(tmp_path: Path, tiny_model_folder: Path) -> Path:
    root = tmp_path / "webui"
    shutil.copytree(tiny_model_folder, root / "models" / "Stable-diffusion" / "tiny")
    return root


@pytest.fixture
def server(tmp_path: Path, models: Path) -> Iterator[tuple[str, Any, Settings]]:
    """A server that runs no job itself: only remote workers do."""
    settings = Settings(data_dir=tmp_path / "server", model_folders=[models])
    app = create_app(settings, config=ServerConfig(token=TOKEN), workers="remote", lease_seconds=3.0)
    with live_server(app) as base:
        yield base, app, settings


def _env(data: Path, models: Path, threads: str | None = None) -> dict[str, str]:
    threads = threads or os.environ.get("SFUMATO_TEST_THREADS", "1")
    return dict(
        os.environ,
        SFUMATO_DATA_DIR=str(data),
        SFUMATO_CONFIG=str(data / "config.toml"),
        SFUMATO_MODEL_FOLDERS=f'["{models}"]',
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
    )


def _worker(
    base: str, models: Path, data: Path, name: str, *more: str, threads: str | None = None
) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "sfumato"), "worker", "--server", base, "--token", TOKEN]
    command += ["--name", name, "--poll", "0.2", *more]
    env = _env(data, models, threads)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _submit(base: str, **fields: Any) -> str:
    request = {
        "prompt": "a red circle",
        "seed": 7,
        "width": 64,
        "height": 64,
        "sampler": "Euler",
        "model": "tiny",
    }
    request.update(fields)
    answer = httpx.post(f"{base}/api/jobs", json={"request": request}, headers=AUTH, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def _job(base: str, job_id: str) -> dict[str, Any]:
    return httpx.get(f"{base}/api/jobs/{job_id}", headers=AUTH, timeout=30).json()


def _wait(condition: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _events(app: Any) -> list[JobEvent]:
    seen: list[JobEvent] = []
    app.state.context.queue.bus.subscribe(seen.append)
    return seen


def test_a_remote_worker_saves_the_picture_in_the_server_archive(
    server: tuple[str, Any, Settings], models: Path, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    base, app, settings = server
    events = _events(app)
    (models / "embeddings").mkdir()  # one the tiny model cannot use: the worker's run notes say so
    save_file({"string_to_param.*": torch.zeros(1, 999)}, models / "embeddings" / "sfwide.safetensors")
    job_id = _submit(base, prompt="a red circle sfwide", steps=60)
    worker = _worker(base, models, tmp_path / "worker", "box-1", "--jobs", "1")
    out, _ = worker.communicate(timeout=240)
    assert worker.returncode == 0, out.decode()

    job = _job(base, job_id)
    assert job["state"] == "finished" and job["worker_id"].startswith("remote:box-1:")
    assert any(note.startswith("Embedding 'sfwide'") for note in job["notes"]), job["notes"]
    assert len(job["images"]) == 1
    saved = settings.outputs / job["images"][0]["path"]
    assert saved.is_file() and saved.is_relative_to(settings.outputs)
    assert ArchiveIndex.from_settings(settings).count() == 1
    recipe = read_metadata(saved).request
    assert recipe is not None and recipe.seed == 7 and recipe.model == "tiny" and recipe.steps == 60
    assert any(isinstance(e, JobProgress) and e.job_id == job_id for e in events)  # what SSE clients see
    assert not list((tmp_path / "worker").glob("**/*.png"))  # nothing kept on the worker

    from sfumato.jobs.runner import run_request

    local = Settings(data_dir=tmp_path / "local", model_folders=[models])
    here = run_request(local, GenerationRequest.model_validate(job["request"])).pictures[0].file
    assert np.array_equal(np.asarray(Image.open(saved)), np.asarray(Image.open(here)))
    assert read_metadata(here).parameters == read_metadata(saved).parameters


@pytest.mark.slow  # two worker processes start: about a minute here
def test_a_killed_worker_loses_its_job_to_another(
    server: tuple[str, Any, Settings], models: Path, tmp_path: Path
) -> None:
    base, app, settings = server
    events = _events(app)
    job_id = _submit(base, steps=150, width=192, height=192)
    first = _worker(base, models, tmp_path / "first", "first")
    try:
        _wait(lambda: any(isinstance(e, JobProgress) and e.job_id == job_id for e in events))
        assert _job(base, job_id)["worker_id"].startswith("remote:first:")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        _wait(lambda: _job(base, job_id)["state"] == "queued", timeout=30)  # the lease ran out
        second = _worker(base, models, tmp_path / "second", "second", "--jobs", "1")
        out, _ = second.communicate(timeout=240)
        assert second.returncode == 0, out.decode()
    finally:
        first.kill()
    job = _job(base, job_id)
    assert job["state"] == "finished" and job["attempts"] == 2
    assert job["worker_id"].startswith("remote:second:") and "Resumed" in job["notes"][0]
    assert ArchiveIndex.from_settings(settings).count() == 1
    assert len(list(settings.outputs.glob("**/*.png"))) == 1


def test_a_worker_with_a_wrong_token_stops_with_a_message(server: tuple[str, Any, Settings]) -> None:
    from sfumato.cli.main import app

    base, _, _ = server
    result = CliRunner().invoke(app, ["worker", "--server", base, "--token", "not-it"])
    assert result.exit_code == 2
    assert "refused this worker (HTTP 401)" in result.stderr and "token" in result.stderr


def test_a_worker_gives_up_on_a_server_that_is_gone() -> None:
    from sfumato.cli.main import app

    gone = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["worker", "--server", gone, "--token", TOKEN, "--retry-for", "2"])
    assert result.exit_code == 1
    assert f"The server at {gone} has not answered for 2 s" in result.stderr
    assert time.monotonic() - started < 60


def test_a_job_of_an_unknown_kind_is_failed_not_run() -> None:
    from sfumato.jobs.remote_worker import RemoteWorker, WorkerClient

    calls: list[tuple[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        import json

        calls.append((request.url.path, json.loads(request.content or b"{}")))
        if request.url.path.endswith("/claim"):
            job = {"id": "j1", "state": "running", "request": {"prompt": "x"}, "created_at": 0}
            return httpx.Response(
                200, json={"lease": "L" * 32, "lease_seconds": 30, "kind": "shell", "job": job}
            )
        return httpx.Response(200, json={})

    class NeverRun:
        def run(self, *_: Any, **__: Any) -> Any:
            raise AssertionError("a job of an unknown kind was run")

    client = WorkerClient("http://server:7860", TOKEN, transport=httpx.MockTransport(answer))
    worker = RemoteWorker(client, NeverRun(), "box", say=lambda _: None)  # type: ignore[arg-type]
    assert worker.run(max_jobs=1) == 1
    path, body = calls[-1]
    assert path == f"/api/workers/leases/{'L' * 32}/fail"
    assert body["kind"] == "request" and "cannot run jobs of kind 'shell'" in body["reason"]


def test_a_worker_whose_server_goes_away_mid_job_stops_the_job_and_gives_up() -> None:
    from sfumato.core.errors import Cancelled
    from sfumato.jobs.remote_worker import RemoteWorker, ServerGone, WorkerClient

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/claim"):
            job = {"id": "j1", "state": "running", "request": {"prompt": "x"}, "created_at": 0}
            return httpx.Response(
                200, json={"lease": "L" * 32, "lease_seconds": 1.5, "kind": "generate", "job": job}
            )
        raise httpx.ConnectError("connection refused", request=request)

    class RunsUntilStopped:
        stopped = False

        def run(self, job: Any, *, on_progress: Any, cancel: Any) -> Any:
            deadline = time.monotonic() + 60
            while not cancel.cancelled and time.monotonic() < deadline:
                time.sleep(0.05)
            self.stopped = cancel.cancelled
            raise Cancelled()

    executor = RunsUntilStopped()
    client = WorkerClient("http://server:7860", TOKEN, retry_for=1.0, transport=httpx.MockTransport(answer))
    worker = RemoteWorker(client, executor, "box", say=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(ServerGone, match="has not answered for 1 s"):
        worker.run(max_jobs=1)
    assert executor.stopped


def test_a_training_runs_on_a_remote_worker_and_its_file_lands_in_the_server_library(
    server: tuple[str, Any, Settings], models: Path, tmp_path: Path
) -> None:
    """The issue's check: the same textual inversion through a worker process and here, same seed,
    gives the same file; the server's library gets it, the worker keeps no copy of the pictures."""
    from safetensors import safe_open

    from sfumato.core.images import to_data_uri
    from sfumato.prompts.networks import LibraryResolver
    from sfumato.training.world_examples import concept_examples

    base, app, settings = server
    events = _events(app)
    examples = concept_examples(5, colour="pink", name="sfpink")
    training = {"kind": "embedding", "name": "sfpink", "init_text": "red", "steps": 6, "batch": 2, "seed": 5}
    training |= {"sample_every": 3}
    pictures = [{"image": to_data_uri(e.image), "caption": e.caption} for e in examples]
    answer = httpx.post(
        f"{base}/api/train", json={"training": training, "pictures": pictures}, headers=AUTH, timeout=60
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    # One thread on both sides: with more, CPU reductions may sum in another order from run to run.
    worker = _worker(base, models, tmp_path / "worker", "gpu-box", "--jobs", "1", threads="1")
    out, _ = worker.communicate(timeout=240)
    assert worker.returncode == 0, out.decode()

    job = _job(base, job_id)
    assert job["state"] == "finished" and job["worker_id"].startswith("remote:gpu-box:"), job
    remote = LibraryResolver(settings)("embedding", "sfpink")
    assert remote is not None and job["output"] == str(remote) and remote.is_file()
    progress = [e for e in events if isinstance(e, JobProgress) and e.job_id == job_id]
    assert progress and all(e.loss is not None and e.loss > 0 for e in progress)
    assert any(e.preview is not None for e in progress)  # the sample pictures, as previews
    assert not list((tmp_path / "worker").glob("**/*.png*"))  # pictures and samples: none kept there
    assert not list((tmp_path / "worker").glob("**/sfpink.safetensors"))

    folder = tmp_path / "here-pictures"  # what the server wrote for the job: the same files
    folder.mkdir()
    for index, example in enumerate(examples):
        example.image.convert("RGB").save(folder / f"{index:04d}.png")
        (folder / f"{index:04d}.txt").write_text(example.caption, "utf-8")
    options = ["--init-text", "red", "--steps", "6", "--batch", "2", "--seed", "5", "--sample-every", "3"]
    command = [str(Path(sys.executable).parent / "sfumato"), "train", "embedding", "--images", str(folder)]
    trained = subprocess.run(
        [*command, "--name", "sfpink", *options, "--json"],
        env=_env(tmp_path / "here", models, threads="1"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert trained.returncode == 0, trained.stderr
    here = Path(json.loads(trained.stdout)["path"])
    with safe_open(str(remote), "pt") as a, safe_open(str(here), "pt") as b:
        assert a.metadata() == b.metadata()
        assert set(a.keys()) == set(b.keys()) == {"string_to_param.*"}
        assert torch.equal(a.get_tensor("string_to_param.*"), b.get_tensor("string_to_param.*"))


def test_a_worker_only_claims_the_kinds_it_runs(server: tuple[str, Any, Settings]) -> None:
    base, _, _ = server
    job_id = _submit(base)
    claim = {"worker": "old-box", "kinds": ["train"]}
    none = httpx.post(f"{base}/api/workers/claim", json=claim, headers=AUTH, timeout=30).json()
    assert none["lease"] is None and _job(base, job_id)["state"] == "queued"
    claim["kinds"] = ["generate"]
    taken = httpx.post(f"{base}/api/workers/claim", json=claim, headers=AUTH, timeout=30).json()
    assert taken["kind"] == "generate" and taken["job"]["id"] == job_id
    listing = httpx.get(f"{base}/api/workers/leases/{taken['lease']}/training-set", headers=AUTH, timeout=30)
    assert listing.status_code == 422 and "not a training" in listing.json()["detail"]


def test_a_trained_file_that_is_not_an_embedding_fails_the_job_and_leaves_the_library_alone(
    server: tuple[str, Any, Settings],
) -> None:
    import base64

    from sfumato.core.images import to_data_uri
    from sfumato.prompts.networks import LibraryResolver
    from sfumato.training.world_examples import concept_examples

    base, _, settings = server
    pictures = [{"image": to_data_uri(e.image)} for e in concept_examples(2, colour="pink", name="sfpink")]
    training = {"kind": "embedding", "name": "sfpink", "steps": 2}
    submitted = httpx.post(
        f"{base}/api/train", json={"training": training, "pictures": pictures}, headers=AUTH, timeout=60
    )
    assert submitted.status_code == 202, submitted.text
    claim = {"worker": "box", "kinds": ["generate", "train"]}
    taken = httpx.post(f"{base}/api/workers/claim", json=claim, headers=AUTH, timeout=30).json()
    lease = f"{base}/api/workers/leases/{taken['lease']}"
    listing = httpx.get(f"{lease}/training-set", headers=AUTH, timeout=30).json()
    assert sorted(f["name"] for f in listing["files"]) == ["0000.png", "0001.png"]
    first = httpx.get(f"{lease}/training-set/0000.png", headers=AUTH, timeout=30)
    assert first.status_code == 200 and first.content.startswith(b"\x89PNG")
    escape = httpx.get(f"{lease}/training-set/..%2Fjobs.sqlite", headers=AUTH, timeout=30)
    assert escape.status_code == 404

    garbage = {"trained": {"safetensors": base64.b64encode(b"not a safetensors file").decode()}}
    ended = httpx.post(f"{lease}/complete", json=garbage, headers=AUTH, timeout=30)
    assert ended.status_code == 200 and ended.json()["state"] == "failed"
    assert "not a usable embedding" in ended.json()["error"]
    assert LibraryResolver(settings)("embedding", "sfpink") is None
    assert not list(settings.data_dir.glob("models/**/*sfpink*"))


def test_a_worker_keeps_its_lease_while_it_fetches_a_large_training_set(tmp_path: Path) -> None:
    from sfumato.jobs.remote_worker import RemoteWorker, WorkerClient
    from sfumato.jobs.results import JobResults

    calls: list[str] = []
    training = {"kind": "embedding", "images": "/server/sets/1", "name": "sfpink", "steps": 2}
    job = {"id": "j1", "state": "running", "request": {}, "created_at": 0, "kind": "train"}
    files = ["0000.png", "0000.txt", "0001.png"]

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls.append(path)
        if path.endswith("/claim"):
            claim = {
                "lease": "L" * 32,
                "lease_seconds": 1.2,
                "kind": "train",
                "job": job | {"training": training},
            }
            return httpx.Response(200, json=claim)
        if path.endswith("/training-set"):
            return httpx.Response(200, json={"files": [{"name": n, "bytes": 3} for n in files]})
        if "/training-set/" in path:
            time.sleep(0.3)  # a slow link
            return httpx.Response(200, content=path.rsplit("/", 1)[1].encode())
        if path.endswith("/heartbeat"):
            return httpx.Response(200, json={"cancel": False, "expires_at": 0})
        return httpx.Response(200, json={})

    class Executor:
        def __init__(self) -> None:
            self.settings = Settings(data_dir=tmp_path / "worker")
            self.seen: dict[str, bytes] = {}

        def run(self, job: Any, *, on_progress: Any, cancel: Any) -> JobResults:
            folder = Path(job.training.images)
            self.seen = {p.name: p.read_bytes() for p in folder.iterdir()}
            return JobResults()

    executor = Executor()
    client = WorkerClient("http://server:7860", TOKEN, transport=httpx.MockTransport(answer))
    worker = RemoteWorker(client, executor, "box", say=lambda _: None)  # type: ignore[arg-type]
    assert worker.run(max_jobs=1) == 1
    assert executor.seen == {name: name.encode() for name in files}
    fetching = calls[calls.index(f"/api/workers/leases/{'L' * 32}/training-set") : -1]
    assert any(path.endswith("/heartbeat") for path in fetching[:4]), calls  # before the last download
    assert calls[-1].endswith("/complete")
    assert not (tmp_path / "worker" / "training-sets" / "remote-j1").exists()  # nothing kept
