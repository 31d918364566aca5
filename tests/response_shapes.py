"""A body as the API sent it, checked against the response model that documents it
(``orchestrator.http.responses``): strict types, no unknown field, no missing one, and the
fields in the model's order (clients and the generated OpenAPI document both see that order)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter


def assert_conforms(kind: Any, body: Any, *, ordered: bool = True) -> None:
    """``body`` (parsed JSON) validates as ``kind`` (a response model or type alias) and, with
    ``ordered``, lists its fields in the models' order at every level."""
    value = TypeAdapter(kind).validate_json(json.dumps(body), strict=True)
    if ordered:
        _assert_order(value, body, "(body)")


def _assert_order(value: Any, body: Any, where: str) -> None:
    if isinstance(value, BaseModel) and isinstance(body, dict):
        declared = [name for name in type(value).model_fields if name in body]
        assert [name for name in body if name in type(value).model_fields] == declared, (where, list(body), declared)
        for name in declared:
            _assert_order(getattr(value, name), body[name], f"{where}.{name}")
    elif isinstance(value, list) and isinstance(body, list):
        for index, (item, raw) in enumerate(zip(value, body, strict=True)):
            _assert_order(item, raw, f"{where}.{index}")
