"""YAML for people and diffs: block style, multi-line text as literal blocks, no anchors."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key; never an anchor or alias (a shared object is
    written out again in each place)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    """A short list of scalars (``required``, ``enum``) on one line, like ``[a, b]``."""
    scalars = all(isinstance(item, str | int | float | bool) or item is None for item in value)
    flow = scalars and len(repr(value)) <= 80 and not any(isinstance(item, str) and "\n" in item for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _text)
_Dumper.add_representer(list, _list)


def dump(document: Any) -> str:
    """``document`` as YAML, keys in insertion order."""
    text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return text
