"""/openapi.json is the contract: schemathesis (seeded, bounded) drives every operation of the app in-process
with valid and invalid input and checks what it answers against the document: no 5xx, every status
documented, bodies of the documented shape, invalid input refused, valid input accepted, `Allow` right
on 405; and the server still healthy after."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from server_helpers import TINY_CATALOG, live_server

from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.model import SavedImage
from sfumato.server import create_app

SEED = 21
EXAMPLES = 12  # per operation and mode in the default suite; the slow run takes 25 times as many
HEADERS = {"host": "127.0.0.1:7860"}  # the access guard refuses other Host headers on loopback
CASES: list[tuple[str, str, str]] = []

# Valid by the schema but refused for what a schema cannot say, with the reason:
_SEMANTIC_REFUSALS = [
    # a picture's bytes (init_image, mask, A1111's init_images/image) must decode as an image
    ("POST /api/jobs", ["2xx", "400", "404", "409", "422"]),  # 400: a LoRA named by a path in the prompt
    ("POST /sdapi/v1/img2img", ["2xx", "404", "409", "422"]),
    ("POST /api/fix-crop", ["2xx", "404", "409", "422"]),
    ("POST /api/restore-faces", ["2xx", "404", "422"]),  # 404: no restorer file for the faces found
    # axis names are matched without case, and each axis's values must fit the field it varies
    ("POST /api/xyz", ["2xx", "404", "409", "422"]),
    # the picture's bytes must decode as an image
    ("POST /api/edit", ["2xx", "404", "422"]),
    # a training request's fields are checked as a TrainingRequest; its pictures must decode
    ("POST /api/train", ["2xx", "422"]),
    # the video's bytes must decode as a video
    ("POST /api/video/keyframes", ["2xx", "404", "409", "422"]),
    ("POST /sdapi/v1/png-info", ["2xx", "422"]),
    # analysis: a picture must decode; a search takes exactly one query; datasets and checkers are configured
    ("POST /sdapi/v1/interrogate", ["2xx", "422"]),
    ("POST /api/interrogate", ["2xx", "422"]),
    ("POST /api/search/archive", ["2xx", "422"]),
    ("POST /api/search/dataset", ["2xx", "404", "422"]),
    ("POST /api/nsfw/check", ["2xx", "422"]),
    # A1111's request schema is kept as A1111 publishes it: looser than what can be run (sizes, samplers)
    ("POST /sdapi/v1/txt2img", ["2xx", "404", "409", "422"]),
    # the server keeps at most 256 options in all, over every request
    ("POST /sdapi/v1/options", ["2xx", "404", "422"]),
    # a picture's bytes must decode as an image; upscalers are named from the server's list
    ("POST /sdapi/v1/extra-single-image", ["2xx", "404", "422"]),
    ("POST /sdapi/v1/extra-batch-images", ["2xx", "404", "422"]),
    ("POST /api/postprocess", ["2xx", "404", "422"]),
    # a path that leaves the outputs folder ("..", links) is refused
    ("GET /api/files/{path}", ["2xx", "400", "404"]),
    # a lease is known only while the server lends it (else 409); uploaded pictures must decode as PNG
    ("POST /api/workers/leases/{lease}/heartbeat", ["2xx", "409"]),
    ("POST /api/workers/leases/{lease}/progress", ["2xx", "409"]),
    ("POST /api/workers/leases/{lease}/complete", ["2xx", "409", "422"]),
    ("POST /api/workers/leases/{lease}/fail", ["2xx", "409"]),
    ("POST /api/workers/leases/{lease}/cancelled", ["2xx", "409"]),
    # features this server does not offer over the A1111 API answer a 422 that says so
    ("POST /sdapi/v1/create/embedding", ["422"]),
    ("POST /sdapi/v1/train/embedding", ["422"]),
    ("POST /sdapi/v1/create/hypernetwork", ["422"]),
    ("POST /sdapi/v1/train/hypernetwork", ["422"]),
]


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"deterministic": True},
            "operations": [
                {
                    "include-name": name,
                    "checks": {"positive_data_acceptance": {"expected-statuses": statuses}},
                }
                for name, statuses in _SEMANTIC_REFUSALS
            ],
        }
    )


def _null_run(
    request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
) -> Sequence[SavedImage]:
    return []  # the API layer is under test here, not the engine


def _app(data_dir: Path) -> Any:
    return create_app(Settings(data_dir=data_dir), run=_null_run, catalog=TINY_CATALOG, poll_seconds=0.05)


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """Every operation with valid input, and with invalid input where it takes any."""
    spec = _app(Path("/nonexistent-sfumato-schemathesis")).openapi()
    found = []
    for path, item in spec["paths"].items():
        if path == "/api/events":  # an endless stream; the event tests cover it
            continue
        for method, operation in item.items():
            found.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                found.append((method.upper(), path, GenerationMode.NEGATIVE))
    return found


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The app on a free loopback port (uvicorn), as a client meets it."""
    app = _app(tmp_path_factory.mktemp("schemathesis") / "data")
    with live_server(app) as base_url:
        yield app, base_url


@pytest.fixture(scope="module")
def client(served: tuple[Any, str]) -> Iterator[TestClient]:
    with TestClient(served[0], base_url="http://127.0.0.1:7860", raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def schema(served: tuple[Any, str]) -> Any:
    return schemathesis.openapi.from_url(served[1] + "/openapi.json", config=_config())


def _campaign(
    schema: Any, base_url: str, method: str, path: str, mode: GenerationMode, examples: int
) -> None:
    operation = schema[path][method]

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        CASES.append((method, path, mode.value))
        case.call_and_validate(timeout=30)

    check()
    assert httpx.get(base_url + "/api/health").status_code == 200  # still up


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_the_api_keeps_its_published_contract(
    schema: Any, served: tuple[Any, str], method: str, path: str, mode: GenerationMode
) -> None:
    _campaign(schema, served[1], method, path, mode, EXAMPLES)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_the_api_keeps_its_published_contract_at_length(
    schema: Any, served: tuple[Any, str], method: str, path: str, mode: GenerationMode
) -> None:
    _campaign(schema, served[1], method, path, mode, EXAMPLES * 25)


def test_the_campaign_above_ran_every_operation_both_ways() -> None:
    if not CASES:
        pytest.skip("run with the schemathesis tests above")
    ran = {(method, path, mode) for method, path, mode in CASES}
    assert len(ran) == len(OPERATIONS), sorted(ran)
    assert len(CASES) >= len(OPERATIONS) * EXAMPLES // 2, len(CASES)


def test_every_api_error_is_documented_in_one_shape(served: tuple[Any, str]) -> None:
    spec = served[0].openapi()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            model = "A1111Error" if path.startswith("/sdapi/") else "ErrorBody"
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref == f"#/components/schemas/{model}", (method, path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_out_of_range_ids_are_422_in_the_documented_shape(client: TestClient) -> None:
    for url in ("/api/archive/99999999999999999999", "/api/archive/99999999999999999999/image"):
        answer = client.get(url, headers=HEADERS)
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["error"] == "InvalidRequest"
        assert body["fields"] == [
            {"loc": ["path", "record_id"], "msg": "Input should be less than or equal to 9223372036854775807"}
        ]


def test_a_priority_of_the_wrong_type_is_refused_not_coerced(client: TestClient) -> None:
    for priority in ("5", 5.5, True):
        answer = client.post("/api/jobs", json={"request": {}, "priority": priority}, headers=HEADERS)
        assert answer.status_code == 422, (priority, answer.text)
        assert answer.json()["fields"][0]["loc"] == ["body", "priority"]


def test_405_names_every_method_served_at_the_path(client: TestClient) -> None:
    answer = client.put("/api/jobs", headers=HEADERS)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    assert answer.json() == {
        "error": "MethodNotAllowed",
        "detail": "PUT is not served at /api/jobs; use GET, POST.",
        "fields": [],
    }


def test_a1111_errors_keep_a1111s_shape(client: TestClient) -> None:
    answer = client.post("/sdapi/v1/txt2img", json={"steps": "many"}, headers=HEADERS)
    assert answer.status_code == 422
    assert set(answer.json()) == {"error", "detail", "body", "errors"}
    assert "steps" in answer.json()["detail"]


def test_a_bug_is_a_500_in_the_documented_shape_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(data_dir=tmp_path), run=_null_run, catalog=TINY_CATALOG)

    @app.get("/api/broken")
    def explode() -> None:
        raise ZeroDivisionError("a bug")

    with TestClient(app, base_url="http://127.0.0.1:7860", raise_server_exceptions=False) as client:
        answer = client.get("/api/broken")
    assert answer.status_code == 500
    assert answer.json()["error"] == "InternalError"
    assert "Traceback" not in answer.text and "ZeroDivisionError" not in answer.text
    assert any(record.exc_info and record.exc_info[0] is ZeroDivisionError for record in caplog.records)
