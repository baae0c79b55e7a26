"""The served OpenAPI document: valid 3.1 shape, and every registered route described."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aiohttp import web

from tests.admin.conftest import Server
from tokenomy.admin import models as m
from tokenomy.admin.openapi import OPERATIONS

pytestmark = pytest.mark.timeout(60)

_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _registered(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):  # HEAD beside every GET; * answers 405
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        out.add((route.method.lower(), str(path)))
    return out


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_document_is_served_without_a_key_and_is_openapi_3_1(server: Server) -> None:
    async with server.session.get(server.base + "/admin/v1/openapi.json") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        doc = json.loads(await resp.text())
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["components"]["securitySchemes"]["adminKey"]["scheme"] == "bearer"

    # Every route registered is documented, and nothing else is.
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert documented == _registered(server.app)

    schemas = doc["components"]["schemas"]
    op_ids = []
    for path, item in doc["paths"].items():
        assert set(item) <= _METHODS
        for method, op in item.items():
            op_ids.append(op["operationId"])
            assert op["summary"] and op["responses"], (method, path)
            assert all(re.fullmatch(r"[1-5]\d\d", code) for code in op["responses"])
            # Every {param} in the path is declared as a required path parameter.
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path
            for p in op.get("parameters", []):
                assert p["in"] in ("path", "query") and "schema" in p
                assert p["required"] or p["in"] == "query"
            if method in ("put", "post") and path.endswith(
                ("keys", "budgets", "transfer", "limits")
            ):
                assert "requestBody" in op, path
            if "security" not in op:
                assert "401" in op["responses"], path
    assert len(op_ids) == len(set(op_ids))
    # Every $ref resolves inside the document.
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, ref
    for model in (*m.REQUEST_MODELS, *m.RESPONSE_MODELS):
        assert model.__name__ in schemas


def test_bodies_document_their_fields_and_money_is_a_number() -> None:
    from tokenomy.admin.openapi import document

    schemas = document()["components"]["schemas"]
    budget = schemas["SetBudgetBody"]
    assert budget["required"] == ["scope", "limit"]
    assert budget["additionalProperties"] is False
    assert {"scope", "limit", "unit", "period", "hard", "alerts"} == set(budget["properties"])
    assert budget["properties"]["unit"]["enum"] == ["usd", "tokens"]
    assert set(schemas["TransferBody"]["properties"]) == {"from", "to", "amount", "unit"}
    assert schemas["BudgetRowOut"]["properties"]["remaining"]["type"] == "number"
    assert schemas["UsageRowOut"]["properties"]["cost_usd"]["type"] == "number"


def test_operations_are_unique() -> None:
    keys = [(op.method, op.path) for op in OPERATIONS]
    assert len(keys) == len(set(keys))


def _inputs(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every schema a client sends: parameters and request bodies (with what they hold)."""
    out: list[tuple[str, Any]] = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            out += [
                (f"{method} {path} ?{p['name']}", p["schema"]) for p in op.get("parameters", [])
            ]
    for model in m.REQUEST_MODELS:
        out.append((model.__name__, doc["components"]["schemas"][model.__name__]))
    return out


def _leaves(where: str, node: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(f"{where}[{i}]", v)]
    if not isinstance(node, dict):
        return []
    found = [(where, node)] if node.get("type") in ("string", "number", "integer") else []
    for key, value in node.items():
        if key not in ("examples", "default", "enum", "const"):
            found += _leaves(f"{where}.{key}", value)
    return found


def test_every_input_states_its_bounds() -> None:
    """Numbers have a minimum and a maximum; text has a pattern, an enum or a format, so
    the document is never looser than the server (tests/admin/test_schemathesis.py)."""
    from tokenomy.admin.openapi import document

    for name, schema in _inputs(document()):
        for where, leaf in _leaves(name, schema):
            if leaf["type"] in ("number", "integer"):
                assert "minimum" in leaf and "maximum" in leaf, where
            else:
                assert {"pattern", "enum", "format", "const"} & set(leaf), where


def test_usage_rows_document_every_report_group() -> None:
    from tokenomy.ledger.schema import REPORT_GROUPS

    assert set(REPORT_GROUPS) <= set(m.UsageRowOut.model_fields)
