"""Speed fixes for moto's DynamoDB, installed by ``moto_patches.install()``.

moto's costs that grow with the item or with the table made local mode slow
where DynamoDB is not (a 10,000-node cohort read took seconds per page):

1. **Items built and sized in linear time.** moto checks the 400 KB item limit
   on every attribute it sets while building an item, re-sizing the whole item
   each time (quadratic in the attributes), and sizes nested maps by rebuilding
   every sub-tree at every level. Items are checked once when built, sizes are
   computed in one walk, scalar values compare without moto's chain of type
   tests (moto 5.2.5 deep-copies attribute values without ``copy.deepcopy``'s
   generic protocol itself).
2. **Projections of top-level attributes** copy those attributes instead of
   converting the whole item to Python values and back.
3. **Queries that read one partition.** moto answers every Query page by
   sorting the whole table, comparing every item's key in Python, sorting the
   matches again and walking past the previous pages item by item. A base-table
   Query now reads its partition, an index Query sorts only the matching items
   (by their key values) and the start key is found by bisection; the page
   limits, range conditions, projections and filters are moto's code (a range
   condition is tested before an item is sized, and, without a Limit, before the
   sort: a read of the newest ids of a busy partition sorted all of it). Anything
   else (legacy ``KeyConditions`` filters, multi-attribute keys, indexes
   without a sort key, the errors moto raises) goes to moto's own query. A
   page is read under the patches' write lock (moto reads while other threads
   write, and could see a write half-applied).

4. **Copies and renderings in one walk.** moto snapshots every item a Query, Scan or update
   reads with ``copy.deepcopy`` (the generic protocol at every node of the attribute tree:
   half of a Query's CPU for a page of full items), renders items for a response with
   ``dynamo_to_dict`` (a chain of type tests at every node) and for a stream record with
   ``Item.to_json`` (another deep copy per nested value). The same trees are now built by
   recursive functions that test each node's type once. (One difference: a value that two
   attributes of an item share, as moto's ``SET a = b`` leaves them, is copied twice; moto's
   memo kept the copies shared. DynamoDB holds two values.)

Results are moto's: ``ORIGINALS`` keeps moto's implementations, and
``tests/unit/test_moto_speed.py`` compares both on generated items and queries.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import re
from bisect import bisect_left, bisect_right
from decimal import Decimal
from typing import Any

ORIGINALS: dict[str, Any] = {}  # moto's own implementations, for the differential tests
_READ_LOCK: Any = contextlib.nullcontext()  # moto_patches' write lock: a query page is one snapshot
MOTO_ITEM_LIMIT = 405_000  # moto's own threshold for "Item size has exceeded the maximum allowed size"
_LIST_ELEMENT = re.compile(r"(.+)\[(\d+)\]$")  # moto's test for a "name[index]" path
_SCALAR_AS_IS = frozenset({"S", "B", "BOOL"})
_SETS = frozenset({"SS", "NS", "BS"})
_BINARIES = frozenset({"B", "BS"})


def install(lock: Any = None) -> None:
    """Install the fast paths; with ``lock`` (the lock every write takes), a Query reads
    under it, so a page never sees a write half-applied or a partition change under it."""
    global _READ_LOCK  # noqa: PLW0603 - set once, with the patches
    if ORIGINALS:
        return
    if lock is not None:
        _READ_LOCK = lock
    from moto.dynamodb import responses
    from moto.dynamodb.models import utilities
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table

    ORIGINALS.update(
        cast_value=DynamoType.cast_value.fget,  # type: ignore[attr-defined]
        size=DynamoType.size,
        type_deepcopy=DynamoType.__deepcopy__,
        item_init=Item.__init__,
        item_project=Item.project,
        item_deepcopy=Item.__deepcopy__,
        item_to_json=Item.to_json,
        dynamo_to_dict=utilities.dynamo_to_dict,
        query=Table.query,
    )
    DynamoType.cast_value = property(cast_value)  # type: ignore[method-assign,assignment]
    DynamoType.size = size_of  # type: ignore[method-assign,assignment]
    DynamoType.__deepcopy__ = type_deepcopy  # type: ignore[method-assign]
    Item.__init__ = item_init  # type: ignore[method-assign]
    Item.project = project  # type: ignore[method-assign]
    Item.__deepcopy__ = item_deepcopy  # type: ignore[method-assign]
    Item.to_json = item_to_json  # type: ignore[method-assign]
    # moto's renderer calls itself through the module's name: both bindings are replaced.
    utilities.dynamo_to_dict = dynamo_to_dict
    responses.dynamo_to_dict = dynamo_to_dict  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]


# Values and items --------------------------------------------------------------------------
@functools.cache
def _types() -> Any:
    """moto's ``dynamo_type`` module, imported once (sizing calls this for every map)."""
    from moto.dynamodb.models import dynamo_type

    return dynamo_type


def cast_value(self: Any) -> Any:
    kind = self.type
    if kind in _SCALAR_AS_IS:
        return self.value
    if kind == "N":
        return Decimal(self.value)
    return ORIGINALS["cast_value"](self)


def _bytesize(value: Any) -> int:
    return len(value if isinstance(value, bytes) else value.encode("utf-8"))


def size_of(node: Any) -> int:
    """moto's ``DynamoType.size`` in one walk."""
    kind, value = node.type, node.value
    if kind == "S":
        return _bytesize(value)
    if kind == "N":
        return len(str(value))
    if kind == "M":
        wrap = _types().DynamoType
        return sum(_bytesize(k) + size_of(v if type(v) is wrap else wrap(v)) for k, v in value.items())
    if kind == "L":
        return sum(size_of(v) for v in value)
    if kind in _SETS:
        return sum(len(str(v)) if kind == "NS" else _bytesize(v) for v in value)
    if isinstance(value, bool):
        return 1
    return _bytesize(value)


def _attrs(values: dict[str, Any]) -> Any:
    """A ``LimitedSizeDict`` filled without its per-insert size check."""
    limited = _types().LimitedSizeDict
    attrs = limited.__new__(limited)
    dict.__init__(attrs)
    dict.update(attrs, values)
    return attrs


def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """moto's ``Item.__init__``, with the 400 KB check made once for the whole item."""
    types = _types()
    self.hash_key = hash_key
    self.range_key = range_key
    typed = {key: types.DynamoType(value) for key, value in attrs.items()}
    if sum(_bytesize(key) + size_of(value) for key, value in typed.items()) > MOTO_ITEM_LIMIT:
        raise types.ItemSizeTooLarge
    self.attrs = _attrs(typed)


# Copies and renderings ------------------------------------------------------------------------
_IMMUTABLE = frozenset({str, bytes, bool, int, float, Decimal, type(None)})


def copy_value(node: Any) -> Any:
    """moto's ``DynamoType.__deepcopy__`` of a whole attribute tree, without ``copy.deepcopy``'s
    memo and dispatch at every node (DynamoDB values hold no cycles; a node shared within the
    tree is copied once per place, see 4. above)."""
    wrap: Any = type(node)
    copied = wrap.__new__(wrap)
    kind = copied.type = node.type
    value = node.value
    if kind == "L":
        copied.value = [copy_value(v) if type(v) is wrap else copy.deepcopy(v) for v in value]
    elif kind == "M":
        copied.value = {k: copy_value(v) if type(v) is wrap else copy.deepcopy(v) for k, v in value.items()}
    elif kind in _SETS:
        copied.value = list(value)
    else:
        copied.value = value
    return copied


def type_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
    if id(self) in memo:
        return memo[id(self)]
    copied = memo[id(self)] = copy_value(self)
    return copied


def item_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
    """moto's ``Item.__deepcopy__``: keys and attributes copied, sizes not checked again."""
    if id(self) in memo:
        return memo[id(self)]
    item_type: Any = type(self)
    copied = memo[id(self)] = item_type.__new__(item_type)
    copied.hash_key = copy.deepcopy(self.hash_key, memo)
    copied.range_key = copy.deepcopy(self.range_key, memo)
    wrap = _types().DynamoType
    copied.attrs = _attrs(
        {k: copy_value(v) if type(v) is wrap else copy.deepcopy(v, memo) for k, v in self.attrs.items()}
    )
    return copied


def regular_json(node: Any) -> dict[str, Any]:
    """moto's ``DynamoType.to_regular_json``: the value as DynamoDB JSON, nested values too, in
    new containers (a binary held as base64 text decoded)."""
    wrap = _types().DynamoType
    kind, value = node.type, node.value
    if isinstance(value, dict):
        value = {k: regular_json(v) if isinstance(v, wrap) else copy.deepcopy(v) for k, v in value.items()}
    elif isinstance(value, list):
        value = [regular_json(v) if isinstance(v, wrap) else copy.deepcopy(v) for v in value]
    elif kind == "B" and isinstance(value, str):
        value = base64.b64decode(value)
    elif type(value) not in _IMMUTABLE:
        value = copy.deepcopy(value)
    return {kind: value}


def item_to_json(self: Any, root_attr_name: str = "Attributes") -> dict[str, Any]:
    """moto's ``Item.to_json``: top-level values as they are held, nested ones as
    :func:`regular_json` renders them."""
    wrap = _types().DynamoType
    attributes: dict[str, Any] = {}
    for name, attribute in self.attrs.items():
        value = attribute.value
        if isinstance(value, dict):
            value = {k: regular_json(v) if type(v) is wrap else v.to_regular_json() for k, v in value.items()}
        elif isinstance(value, list):
            value = [regular_json(v) if isinstance(v, wrap) else v for v in value]
        attributes[name] = {attribute.type: value}
    return {root_attr_name: attributes}


def dynamo_to_dict(obj: Any) -> Any:
    """moto's ``dynamo_to_dict`` (a response's model objects as plain values), testing each
    node's exact type first; anything else (binaries, datetimes, models) goes to moto's own."""
    kind = type(obj)
    if kind in _IMMUTABLE:
        return obj
    types = _types()
    if kind is types.DynamoType:
        if obj.type in _BINARIES:
            return ORIGINALS["dynamo_to_dict"](obj)
        return {obj.type: dynamo_to_dict(obj.value)}
    if kind is dict or kind is types.LimitedSizeDict:
        return {k: dynamo_to_dict(v) for k, v in obj.items()}
    if kind is list:
        return [dynamo_to_dict(v) for v in obj]
    return ORIGINALS["dynamo_to_dict"](obj)


def _copies_top_level(projection_expressions: list[list[str]] | None) -> bool:
    """Whether :func:`project` answers these paths itself (top-level names), copying values."""
    if not projection_expressions:
        return False
    names = [path[0] for path in projection_expressions if len(path) == 1]
    return len(names) == len(projection_expressions) and not any(_LIST_ELEMENT.match(name) for name in names)


def project(self: Any, projection_expressions: list[list[str]]) -> Any:
    if not _copies_top_level(projection_expressions):
        return ORIGINALS["item_project"](self, projection_expressions)  # nested paths: moto's way
    names = [path[0] for path in projection_expressions]
    item_type: Any = type(self)
    projected = item_type.__new__(item_type)
    projected.hash_key, projected.range_key = self.hash_key, self.range_key
    projected.attrs = _attrs({name: copy.deepcopy(self.attrs[name]) for name in names if name in self.attrs})
    return projected


# Queries -----------------------------------------------------------------------------------
def query(self: Any, *args: Any, **kwargs: Any) -> Any:
    with _READ_LOCK:
        fast = partition_query(self, *args, **kwargs)
        return ORIGINALS["query"](self, *args, **kwargs) if fast is None else fast


def _native(value: Any) -> Any:
    return value.cast_value


def _index_candidates(
    table: Any, index_name: str, consistent_read: bool, hash_key_conditions: list[tuple[str, Any]] | None
) -> tuple[list[Any], list[str], str] | None:
    """(matching items, sort order, range attribute) of an index Query, or None for moto."""
    from moto.dynamodb.models.table import GlobalSecondaryIndex

    index = {i.name: i for i in table.all_indexes()}.get(index_name)
    if index is None or (consistent_read and isinstance(index, GlobalSecondaryIndex)):
        return None  # moto raises the error
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) != 1 or not hash_key_conditions:
        return None
    index_hash, range_attr = hashes[0], ranges[0]
    expected = _types().DynamoType(hash_key_conditions[0][1])
    item_type = _types().Item
    if table.range_key_attr:
        every = [item for partition in table.items.values() for item in partition.values()]
    else:
        every = list(table.items.values())
    candidates = [
        item
        for item in every
        if isinstance(item, item_type)
        and (value := item.attrs.get(index_hash)) is not None
        and value == expected
        and item.attrs.get(range_attr) is not None
    ]
    return candidates, [index_hash, range_attr, *_table_keys(table)], range_attr


def _table_keys(table: Any) -> list[str]:
    return [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])


def _partition_candidates(table: Any, hash_key: Any) -> tuple[list[Any], list[str]]:
    item_type = _types().Item
    partition = table.items.get(hash_key)
    if partition is None:
        candidates = []
    elif table.range_key_attr:
        candidates = [item for item in partition.values() if isinstance(item, item_type)]
    else:
        candidates = [partition] if isinstance(partition, item_type) else []
    return candidates, _table_keys(table)


def _in_page_order(
    candidates: list[Any], order: list[str], start_key: dict[str, Any] | None, forward: bool
) -> list[Any] | None:
    """The candidates in key order after the start key (None if moto must decide)."""
    try:
        keyed = sorted(
            ((tuple(_native(item.attrs[name]) for name in order), item) for item in candidates),
            key=lambda pair: pair[0],
        )
        sort_keys = [pair[0] for pair in keyed]
        ordered = [pair[1] for pair in keyed]
        if start_key is None:
            return ordered if forward else ordered[::-1]
        if any(name not in start_key for name in order):
            return None
        start = tuple(_native(_types().DynamoType(start_key[name])) for name in order)
    except (KeyError, TypeError):  # an item without a key attribute, or key types that do not compare
        return None
    if forward:
        return ordered[bisect_right(sort_keys, start) :]
    return ordered[: bisect_left(sort_keys, start)][::-1]


def partition_query(
    self: Any,
    hash_key: Any,
    range_comparison: str | None,
    range_objs: list[Any],
    limit: int,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, Any]] | None = None,
    range_key_conditions: list[tuple[str, str, list[Any]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Any], int, dict[str, Any] | None] | None:
    """moto's ``Table.query`` for single-attribute keys, or None for moto to answer."""
    if filter_kwargs or len(hash_key_conditions or ()) > 1 or len(range_key_conditions or ()) > 1:
        return None
    range_attr: str | None = None
    if index_name:
        found = _index_candidates(self, index_name, consistent_read, hash_key_conditions)
        if found is None:
            return None
        candidates, order, range_attr = found
    elif hash_key is None:
        return None
    else:
        candidates, order = _partition_candidates(self, hash_key)
    if range_key_conditions:
        range_attr = range_key_conditions[-1][0]
    candidates = _only_in_range(candidates, range_comparison, range_objs, range_attr, index_name, limit)
    ordered = _in_page_order(candidates, order, exclusive_start_key, scan_index_forward)
    if ordered is None:
        return None
    # Without a Limit the range was tested before the sort: the page loop need not test it again.
    in_range = range_comparison if limit else None
    results, scanned, last_key = _page(self, ordered, limit, in_range, range_objs, range_attr, index_name)
    return _shaped(self, results, index_name, filter_expression, projection_expressions), scanned, last_key


def _shaped(
    table: Any, results: list[Any], index_name: str | None, filter_expression: Any, projections: list[list[str]] | None
) -> list[Any]:
    """A page's items as moto returns them: the index's projection, the filter, the projection
    expression, on a snapshot of the items (taken under the write lock, as the whole page is;
    moto renders the result after it is released)."""
    if not _copies_top_level(projections):
        results = copy.deepcopy(results)  # a projection of top-level attributes copies what it keeps
    if index_name:
        index = table.get_index(index_name)
        results = [index.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projections:
        results = [r.project(projections) for r in results]
    return results


def _in_range(item: Any, comparison: str, bounds: list[Any], range_attr: str | None, index_name: str | None) -> bool:
    """moto's test of an item against a Query's range condition."""
    value = item.attrs.get(range_attr) if range_attr else None
    if value is not None:
        return bool(value.compare(comparison, bounds))
    return bool(not index_name and item.range_key.compare(comparison, bounds))


def _only_in_range(
    candidates: list[Any],
    comparison: str | None,
    bounds: list[Any],
    range_attr: str | None,
    index_name: str | None,
    limit: int | None,
) -> list[Any]:
    """The items in the range, before sorting and paging, when the Query has no Limit (the
    others then change nothing: a page ends on the 1 MB of matching items): the event relay's
    reads of the newest few events of a busy index partition no longer sort the whole partition.
    With a Limit moto's pages end on an item out of the range too: all stay."""
    if not comparison or limit:
        return candidates
    return [c for c in candidates if _in_range(c, comparison, bounds, range_attr, index_name)]


def _page(
    table: Any,
    ordered: list[Any],
    limit: int,
    range_comparison: str | None,
    range_objs: list[Any],
    range_attr: str | None,
    index_name: str | None,
) -> tuple[list[Any], int, dict[str, Any] | None]:
    """moto's page loop: the range condition, then the count and 1 MB limits, sizing only the
    items that match (moto sizes every item of the partition first: a Query for the newest few
    of a thousand items sized all thousand; DynamoDB seeks to the range and reads only those)."""
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT

    results: list[Any] = []
    result_size = 0
    for result in ordered:
        if len(results) == limit:
            return results, len(results), table._get_last_evaluated_key(results[-1], index_name)
        if range_comparison and not _in_range(result, range_comparison, range_objs, range_attr, index_name):
            continue
        size = result.size()
        if result_size + size > RESULT_SIZE_LIMIT:
            return results, len(results), table._get_last_evaluated_key(results[-1], index_name)
        results.append(result)
        result_size += size
    return results, len(results), None
