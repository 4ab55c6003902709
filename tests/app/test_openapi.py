"""The OpenAPI document: well formed, complete, and true to what the API really does.

Schemas are checked with ``jsonschema`` (OpenAPI 3.1 schemas are JSON Schema 2020-12); a
``$ref`` is resolved against the document itself.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from jsonschema import Draft202012Validator, ValidationError

from tests.app.visitor import Visitor

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.json


def _validator(document: dict[str, Any], pointer: str) -> Draft202012Validator:
    """A validator for the schema at JSON pointer ``pointer`` of the document."""
    root = copy.deepcopy(document)
    root["$ref"] = "#" + pointer
    return Draft202012Validator(root)


def _escape(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_document_is_well_formed(document: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    assert document["info"]["title"] and document["info"]["version"]
    operation_ids = []
    for path, item in document["paths"].items():
        assert path.startswith("/")
        for method, operation in item.items():
            assert method in HTTP_METHODS
            operation_ids.append(operation["operationId"])
            assert operation["responses"]
            for status, response in operation["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d|default", status)
                assert response["description"]
                for media in response.get("content", {}).values():
                    assert "schema" in media
            for requirement in operation.get("security", []):
                assert set(requirement) <= set(document["components"]["securitySchemes"])
    assert len(operation_ids) == len(set(operation_ids))
    for ref in _refs(document):
        assert _resolve(document, ref) is not None
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_api_route_is_documented(app: Flask, document: dict[str, Any]) -> None:
    served = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served == documented


def test_examples_are_valid_requests_and_the_api_answers_as_documented(
    visitor: Visitor, document: dict[str, Any]
) -> None:
    pointer = "/paths/" + _escape("/api/v1/events") + "/post"
    operation = document["paths"]["/api/v1/events"]["post"]
    media = operation["requestBody"]["content"]["application/json"]
    request_schema = _validator(document, pointer + "/requestBody/content/application~1json/schema")
    answer = _validator(document, "/components/schemas/Results")
    error = _validator(document, "/components/schemas/Error")
    visitor.arrives()
    visitor.starts_in("en")
    assert media["examples"]
    for name, example in media["examples"].items():
        request_schema.validate(example["value"])
        body = copy.deepcopy(example["value"])
        for event in body.get("events", [body]):
            event["visit_id"] = visitor.visit_id  # the example's visit, made real
            if "occurred_at" in event:  # and its time: during the visit
                event["occurred_at"] = datetime.now(UTC).isoformat()
        response = visitor.post_events(body)
        assert response.status_code == 200, (name, response.json)
        answer.validate(response.json)
        assert str(response.status_code) in operation["responses"]
    for status_example in operation["responses"]["200"]["content"].values():
        answer.validate(status_example["example"])

    refused = {
        400: visitor.post_events({"events": [{"visit_id": "x"}]}),
        401: visitor.client.post("/api/v1/events", json={}),
        403: visitor.post_events({}, token="nope"),
        415: visitor.client.post(
            "/api/v1/events", data="x", headers={"Authorization": f"Bearer {visitor.token}"}
        ),
    }
    for status, response in refused.items():
        assert response.status_code == status
        assert str(status) in operation["responses"]
        error.validate(response.json)
    with pytest.raises(ValidationError, match="is not valid"):
        request_schema.validate({"visit_id": "x", "type": "finish"})


def test_document_passes_the_openapi_specification_validator(document: dict[str, Any]) -> None:
    """An independent validator of the OpenAPI 3.1 specification accepts the document."""
    from openapi_spec_validator import validate

    validate(document)  # raises OpenAPIValidationError on any violation
    assert document["openapi"].startswith("3.1")
