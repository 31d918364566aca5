"""Node labels: the selectable subset of registration metadata (SPEC §7)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

LABEL_TOKEN = re.compile(r"^[A-Za-z0-9._/-]{1,63}$")


def is_label_token(value: str) -> bool:
    return bool(LABEL_TOKEN.fullmatch(value))


def labels_from_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """Metadata entries whose key and (scalar) value are valid label tokens.

    Other entries stay in ``metadata`` but cannot be selected on.
    """
    labels: dict[str, str] = {}
    for key, raw in metadata.items():
        if isinstance(raw, bool):
            value = "true" if raw else "false"
        elif isinstance(raw, str | int | float):
            value = str(raw)
        else:
            continue
        if is_label_token(key) and is_label_token(value):
            labels[key] = value
    return labels
