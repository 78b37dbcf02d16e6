"""The canonical form and content hash: invariant under spelling, changed by any semantic edit."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import format_duration, load_registry_text

#: A small registry written out with every field, as plain data.
BASE: dict[str, Any] = {
    "version": 1,
    "features": [
        {"name": "mid", "function": "mid_price"},
        {"name": "vwap_3s", "function": "vwap", "window": "3s"},
        {"name": "depth_bid", "function": "depth", "params": {"side": "bid", "levels": 5}, "every": "15s"},
        {"name": "fund", "function": "funding_rate", "sources": ["ticker"]},
        {"name": "dens", "function": "liquidity_density", "params": {"bps": 2.5}},
        {"name": "mid_z", "function": "ref", "inputs": ["mid"], "normalise": {"method": "zscore", "n": 300}},
    ],
}


def hash_of(doc: Any) -> str:
    """Hash of a registry given as data, written as block-style YAML."""
    return load_registry_text(yaml.safe_dump(doc, sort_keys=False)).content_hash


BASE_HASH = hash_of(BASE)


def test_canonical_text_is_pinned() -> None:
    """The canonical text of a one-feature registry, and its hash, written out by hand."""
    reg = load_registry_text("version: 1\nfeatures:\n  - {name: mid, function: mid_price}\n")
    expected = ('{"features":[{"every":"1s","function":"mid_price","inputs":[],"name":"mid",'
                '"params":{},"sources":["orderbook"]}],"version":1}')
    assert reg.canonical == expected
    assert reg.content_hash == hashlib.sha256(expected.encode()).hexdigest()


def test_canonical_text_has_every_field_filled() -> None:
    """Windows, cadences, defaults and normalisation appear in the canonical text."""
    doc = json.loads(load_registry_text(yaml.safe_dump(BASE)).canonical)
    assert doc["features"][1] == {"name": "vwap_3s", "function": "vwap", "sources": ["trades"], "window": "3s",
                                  "every": "1s", "params": {}, "inputs": []}
    assert doc["features"][2]["params"] == {"side": "bid", "levels": 5} and doc["features"][2]["every"] == "15s"
    assert doc["features"][5]["normalise"] == {"method": "zscore", "n": 300}


def test_canonical_text_reloads_to_the_same_registry() -> None:
    """The journaled canonical text is itself a registry document with the same hash and definitions."""
    reg = load_registry_text(yaml.safe_dump(BASE), source="a.yaml")
    again = load_registry_text(reg.canonical, source="journal seq 7")
    assert (again.canonical, again.content_hash, again.features, again.order) == (
        reg.canonical, reg.content_hash, reg.features, reg.order)


def test_reformatting_and_comments_keep_the_hash() -> None:
    """Flow style, JSON, indentation and comments do not change the hash."""
    flow = yaml.safe_dump(BASE, default_flow_style=True)
    commented = "# a comment\n" + yaml.safe_dump(BASE, indent=4).replace("version: 1", "version: 1  # format")
    for text in (flow, commented, json.dumps(BASE), json.dumps(BASE, indent=2)):
        assert load_registry_text(text).content_hash == BASE_HASH


def test_explicit_defaults_and_duration_spellings_keep_the_hash() -> None:
    """Spelling a default, or a duration in another unit, does not change the hash."""
    doc = json.loads(json.dumps(BASE))
    f = doc["features"]
    f[0].update(sources=["orderbook"], every="1000ms", params={}, inputs=[])
    f[1]["window"] = "3000ms"
    f[2]["every"] = "15s"
    f[3]["every"] = "1s"
    f[5].update(sources=["features"], every="1s")
    assert hash_of(doc) == BASE_HASH
    assert hash_of(_edit(("features", 2, "params", "levels"), None)) == BASE_HASH  # 5 is the default


def test_int_spelling_of_a_float_parameter_keeps_the_hash() -> None:
    """``bps: 10`` and ``bps: 10.0`` are the same parameter."""
    a = "version: 1\nfeatures: [{name: d, function: liquidity_density, params: {bps: 10}}]"
    assert load_registry_text(a).content_hash == load_registry_text(a.replace("10", "10.0")).content_hash
    assert load_registry_text(a).content_hash == load_registry_text(a.replace(", params: {bps: 10}", "")).content_hash


def _shuffled(doc: Any, data: st.DataObject) -> Any:
    """Return `doc` with the keys of every mapping in a random order (lists keep their order)."""
    if isinstance(doc, dict):
        keys = data.draw(st.permutations(list(doc)))
        return {k: _shuffled(doc[k], data) for k in keys}
    if isinstance(doc, list):
        return [_shuffled(v, data) for v in doc]
    return doc


@settings(max_examples=60, deadline=None)
@given(st.data(), st.booleans())
def test_key_order_never_changes_the_hash(data: st.DataObject, as_json: bool) -> None:
    """Any permutation of mapping keys, in YAML or JSON, gives the same hash."""
    doc = _shuffled(BASE, data)
    text = json.dumps(doc) if as_json else yaml.safe_dump(doc, sort_keys=False)
    assert load_registry_text(text).content_hash == BASE_HASH


def _edit(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """Return a deep copy of BASE with the item at `path` set to `value` (None deletes it)."""
    doc = json.loads(json.dumps(BASE))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


SEMANTIC_EDITS = {
    "rename": (("features", 1, "name"), "vwap_3s_b"),
    "function": (("features", 0, "function"), "spread_abs"),
    "window": (("features", 1, "window"), "4s"),
    "every": (("features", 2, "every"), "30s"),
    "param-value": (("features", 2, "params", "levels"), 6),
    "param-choice": (("features", 2, "params", "side"), "ask"),
    "float-param": (("features", 4, "params", "bps"), 2.6),
    "sources": (("features", 3, "sources"), ["funding"]),
    "sources-default": (("features", 3, "sources"), None),
    "normalise-n": (("features", 5, "normalise", "n"), 301),
    "normalise-dropped": (("features", 5, "normalise"), None),
    "inputs": (("features", 5, "inputs"), ["vwap_3s"]),
    "normalise-added": (("features", 0, "normalise"), {"method": "zscore", "n": 10}),
}


@pytest.mark.parametrize("name", sorted(SEMANTIC_EDITS))
def test_semantic_edits_change_the_hash(name: str) -> None:
    """Every change of meaning changes the hash."""
    path, value = SEMANTIC_EDITS[name]
    assert hash_of(_edit(path, value)) != BASE_HASH


def test_column_order_and_membership_change_the_hash() -> None:
    """Swapping, adding or removing features changes the hash."""
    swapped = json.loads(json.dumps(BASE))
    f = swapped["features"]
    f[1], f[2] = f[2], f[1]
    fewer = json.loads(json.dumps(BASE))
    fewer["features"].pop(4)
    more = json.loads(json.dumps(BASE))
    more["features"].append({"name": "tod", "function": "time_of_day"})
    hashes = {BASE_HASH, hash_of(swapped), hash_of(fewer), hash_of(more)}
    assert len(hashes) == 4


def test_source_label_is_not_part_of_the_hash() -> None:
    """Where a registry came from does not change its identity."""
    text = yaml.safe_dump(BASE)
    assert load_registry_text(text, "a.yaml").content_hash == load_registry_text(text, "b.yaml").content_hash


@pytest.mark.parametrize(("ns", "text"), [
    (1_000_000, "1ms"), (500_000_000, "500ms"), (1_500_000_000, "1500ms"), (10**9, "1s"), (90 * 10**9, "90s"),
    (60 * 10**9, "1m"), (300 * 10**9, "5m"), (3600 * 10**9, "1h"), (7200 * 10**9, "2h"), (5400 * 10**9, "90m"),
])
def test_format_duration_uses_the_largest_exact_unit(ns: int, text: str) -> None:
    """Durations are spelled in their largest exact unit."""
    assert format_duration(ns) == text


def test_format_duration_rejects_sub_millisecond() -> None:
    """Durations finer than a millisecond have no canonical spelling."""
    with pytest.raises(ValueError, match="milliseconds"):
        format_duration(1_500)
