"""Property-based requests generated from the OpenAPI schema: whatever arrives, no 5xx, server alive."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import TINY_CATALOG

from sfumato.core.events import CancelToken, ProgressCallback
from sfumato.core.request import GenerationRequest
from sfumato.core.settings import Settings
from sfumato.jobs.model import SavedImage
from sfumato.server import create_app

EXAMPLES_PER_OPERATION = 60
CASES: list[int] = []


def _null_run(
    request: GenerationRequest, *, on_progress: ProgressCallback, cancel: CancelToken
) -> Sequence[SavedImage]:
    return []  # the API layer is under test here, not the engine


@pytest.fixture(scope="module")
def app_and_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, TestClient]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data")
    app = create_app(settings, run=_null_run, catalog=TINY_CATALOG, poll_seconds=0.05)
    with TestClient(app, base_url="http://127.0.0.1:7860", raise_server_exceptions=False) as client:
        yield app, client


def _inline(node: Any, components: dict[str, Any], depth: int = 0) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _inline(copy.deepcopy(components[name]), components, depth + 1) if depth < 8 else {}
        return {
            k: _inline(v, components, depth)
            for k, v in node.items()
            if k not in ("format", "contentMediaType")
        }
    if isinstance(node, list):
        return [_inline(item, components, depth) for item in node]
    return node


def from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """Values for a (ref-inlined) JSON schema: valid ones mostly, edges included."""
    if not isinstance(schema, dict) or not schema:
        return st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return st.one_of([from_schema(s) for s in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}) for k in kind])
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**40)))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**40))
        return st.integers(int(low) - 1, int(high) + 1)
    if kind == "number":
        return st.floats(
            allow_nan=False,
            allow_infinity=False,
            min_value=schema.get("minimum", -1e9) - 1,
            max_value=schema.get("maximum", 1e9) + 1,
        )
    if kind == "string":
        return st.text(max_size=min(int(schema.get("maxLength", 60)) + 1, 200))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=3)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in properties.items() if k in required},
            optional={k: from_schema(v) for k, v in properties.items() if k not in required},
        )
    return st.one_of(st.none(), st.integers(), st.text(max_size=20))


def _operations() -> list[tuple[str, str]]:
    settings_ = Settings(data_dir=Path("/nonexistent-sfumato-fuzz"))
    app = create_app(settings_, run=_null_run, catalog=TINY_CATALOG)
    return [(method, path) for path, item in app.openapi()["paths"].items() for method in item]


def _strategy(spec: dict[str, Any], method: str, path: str) -> st.SearchStrategy[dict[str, Any]]:
    components = spec.get("components", {}).get("schemas", {})
    operation = spec["paths"][path][method]
    parts: dict[str, st.SearchStrategy[Any]] = {}
    query: dict[str, st.SearchStrategy[Any]] = {}
    for param in operation.get("parameters", []):
        schema = _inline(param.get("schema", {}), components)
        if param["in"] == "path":
            parts[param["name"]] = st.one_of(st.text(min_size=1, max_size=40), from_schema(schema).map(str))
        elif param["in"] == "query":
            query[param["name"]] = st.one_of(st.none(), from_schema(schema), st.text(max_size=20))
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    body_strategy: st.SearchStrategy[Any] = st.none()
    if body is not None:
        inlined = _inline(body, components)
        body_strategy = st.one_of(
            from_schema(inlined),
            st.dictionaries(st.text(max_size=10), st.integers()),
            st.text(max_size=20),
            st.integers(),
        )
    return st.fixed_dictionaries(
        {"path": st.fixed_dictionaries(parts), "query": st.fixed_dictionaries(query), "body": body_strategy}
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("method", "path"), _operations())
def test_no_input_makes_a_5xx(app_and_client: tuple[Any, TestClient], method: str, path: str) -> None:
    app, client = app_and_client
    spec = app.openapi()
    if path == "/api/events":
        pytest.skip("an endless stream; covered by the event tests")

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=_strategy(spec, method, path))
    def check(case: dict[str, Any]) -> None:
        url = path
        for name, value in case["path"].items():
            url = url.replace("{" + name + "}", quote(str(value), safe="") or "x")
        params = {k: v for k, v in case["query"].items() if v is not None and not isinstance(v, dict | list)}
        answer = client.request(
            method, url, params=params, json=case["body"] if method in ("post", "put", "patch") else None
        )
        CASES.append(answer.status_code)
        assert answer.status_code < 500, (method, url, case, answer.status_code, answer.text[:500])

    check()
    assert client.get("/api/health").status_code == 200


def test_the_fuzzing_above_made_over_a_thousand_requests() -> None:
    if not CASES:
        pytest.skip("run with the fuzz tests above")
    assert len(CASES) >= 1000, len(CASES)
