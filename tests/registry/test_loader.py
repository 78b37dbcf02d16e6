"""Loading and validating registry documents: every error names file, feature and field."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import FeatureDef, Normalise, RegistryError, computation_order, load_registry_text

SRC = "bad.yaml"
S = 1_000_000_000


def load(features: str, head: str = "version: 1\n") -> object:
    """Load a registry whose `features:` list is the dedented YAML `features`."""
    body = textwrap.indent(textwrap.dedent(features).strip("\n"), "  ")
    return load_registry_text(f"{head}features:\n{body}\n", source=SRC)


# (id, features YAML, feature label in the message, field, a fragment of the reason)
FEATURE_ERRORS = [
    ("unknown-function", "- {name: a, function: nope}", "features[0] 'a'", "function", "unknown function 'nope'"),
    ("unknown-source", "- {name: a, function: mid_price, sources: [l2]}", "features[0] 'a'", "sources[0]",
     "unknown source 'l2'"),
    ("source-not-allowed", "- {name: a, function: mid_price, sources: [trades]}", "features[0] 'a'", "sources[0]",
     "not allowed for function mid_price"),
    ("source-twice", "- {name: a, function: funding_rate, sources: [ticker, ticker]}", "features[0] 'a'",
     "sources[1]", "listed twice"),
    ("sources-empty", "- {name: a, function: mid_price, sources: []}", "features[0] 'a'", "sources",
     "non-empty list"),
    ("missing-window", "- {name: a, function: vwap}", "features[0] 'a'", "window", "needs a window"),
    ("bad-window-unit", "- {name: a, function: vwap, window: 3x}", "features[0] 'a'", "window", "bad duration '3x'"),
    ("bad-window-zero", "- {name: a, function: vwap, window: 0s}", "features[0] 'a'", "window", "bad duration '0s'"),
    ("bad-window-number", "- {name: a, function: vwap, window: 3}", "features[0] 'a'", "window", "bad duration 3"),
    ("bad-window-fraction", "- {name: a, function: vwap, window: 1.5s}", "features[0] 'a'", "window",
     "bad duration"),
    ("unexpected-window", "- {name: a, function: mid_price, window: 3s}", "features[0] 'a'", "window",
     "takes no window"),
    ("every-subsecond", "- {name: a, function: mid_price, every: 500ms}", "features[0] 'a'", "every",
     "whole number of seconds"),
    ("every-bad-form", "- {name: a, function: mid_price, every: often}", "features[0] 'a'", "every",
     "bad duration 'often'"),
    ("bad-name-upper", "- {name: Mid, function: mid_price}", "features[0]", "name", "bad name 'Mid'"),
    ("bad-name-digit", "- {name: 1m_mid, function: mid_price}", "features[0]", "name", "bad name '1m_mid'"),
    ("bad-name-dash", "- {name: mid-price, function: mid_price}", "features[0]", "name", "bad name"),
    ("bad-name-type", "- {name: 5, function: mid_price}", "features[0]", "name", "bad name 5"),
    ("bad-name-null", "- {name: null, function: mid_price}", "features[0]", "name", "bad name None"),
    ("reserved-name", "- {name: symbol, function: mid_price}", "features[0]", "name", "reserved"),
    ("missing-name", "- {function: mid_price}", "features[0]", "name", "required key is missing"),
    ("missing-function", "- {name: a}", "features[0] 'a'", "function", "required key is missing"),
    ("unknown-feature-key", "- {name: a, function: mid_price, windw: 3s}", "features[0] 'a'", "windw",
     "unknown key"),
    ("entry-not-mapping", "- mid_price", "features[0]", "<entry>", "expected a mapping"),
    ("inputs-too-few", "- {name: a, function: ref}", "features[0] 'a'", "inputs", "reads 1 input feature(s), got 0"),
    ("inputs-too-many", """
        - {name: a, function: mid_price}
        - {name: b, function: mid_price}
        - {name: c, function: ref, inputs: [a, b]}""", "features[2] 'c'", "inputs", "got 2"),
    ("inputs-on-base", """
        - {name: a, function: mid_price}
        - {name: b, function: spread_abs, inputs: [a]}""", "features[1] 'b'", "inputs", "reads 0 input"),
    ("inputs-not-names", "- {name: a, function: ref, inputs: [{x: 1}]}", "features[0] 'a'", "inputs",
     "list of feature names"),
    ("unknown-param", "- {name: a, function: depth, params: {side: bid, depth: 5}}", "features[0] 'a'",
     "params.depth", "unknown parameter (function depth takes: side, levels)"),
    ("param-on-paramless", "- {name: a, function: mid_price, params: {n: 1}}", "features[0] 'a'", "params.n",
     "takes no parameters"),
    ("missing-param", "- {name: a, function: log_return}", "features[0] 'a'", "params.seconds",
     "required parameter of function log_return is missing"),
    ("param-str-for-int", "- {name: a, function: log_return, params: {seconds: '1'}}", "features[0] 'a'",
     "params.seconds", "expected int, got a string '1'"),
    ("param-bool-for-int", "- {name: a, function: log_return, params: {seconds: true}}", "features[0] 'a'",
     "params.seconds", "expected int, got bool True"),
    ("param-float-for-int", "- {name: a, function: depth_imbalance, params: {levels: 5.0}}", "features[0] 'a'",
     "params.levels", "expected int, got float 5.0"),
    ("param-below-min", "- {name: a, function: log_return, params: {seconds: 0}}", "features[0] 'a'",
     "params.seconds", "0 is out of range [1, 86400]"),
    ("param-above-max", "- {name: a, function: depth_imbalance, params: {levels: 1001}}", "features[0] 'a'",
     "params.levels", "out of range"),
    ("param-negative-float", "- {name: a, function: liquidity_density, params: {bps: -0.5}}", "features[0] 'a'",
     "params.bps", "out of range"),
    ("param-nan", "- {name: a, function: liquidity_density, params: {bps: .nan}}", "features[0] 'a'",
     "params.bps", "finite"),
    ("param-not-a-choice", "- {name: a, function: depth, params: {side: mid}}", "features[0] 'a'", "params.side",
     "'mid' is not one of 'bid', 'ask'"),
    ("params-not-mapping", "- {name: a, function: depth, params: [bid, 5]}", "features[0] 'a'", "params",
     "expected a mapping"),
    ("normalise-unknown-method", "- {name: a, function: mid_price, normalise: {method: minmax, n: 3}}",
     "features[0] 'a'", "normalise.method", "unknown normalisation 'minmax'"),
    ("normalise-no-method", "- {name: a, function: mid_price, normalise: {n: 3}}", "features[0] 'a'",
     "normalise.method", "unknown normalisation None"),
    ("normalise-missing-n", "- {name: a, function: mid_price, normalise: {method: zscore}}", "features[0] 'a'",
     "normalise.n", "required parameter of normalisation zscore is missing"),
    ("normalise-n-too-small", "- {name: a, function: mid_price, normalise: {method: zscore, n: 1}}",
     "features[0] 'a'", "normalise.n", "out of range [2, 100000]"),
    ("normalise-n-str", "- {name: a, function: mid_price, normalise: {method: zscore, n: '300'}}",
     "features[0] 'a'", "normalise.n", "expected int"),
    ("normalise-unknown-key", "- {name: a, function: mid_price, normalise: {method: zscore, n: 3, ddof: 0}}",
     "features[0] 'a'", "normalise.ddof", "unknown parameter"),
    ("normalise-not-mapping", "- {name: a, function: mid_price, normalise: zscore}", "features[0] 'a'",
     "normalise", "expected a mapping"),
    ("duplicate-name", """
        - {name: a, function: mid_price}
        - {name: b, function: spread_abs}
        - {name: a, function: spread_rel}""", "features[2] 'a'", "name", "duplicate name (already features[0])"),
    ("missing-input", """
        - {name: a, function: mid_price}
        - {name: z, function: ref, inputs: [mid]}""", "features[1] 'z'", "inputs[0]",
     "'mid' is not a feature of this registry"),
    ("cycle", """
        - {name: base, function: mid_price}
        - {name: a, function: ref, inputs: [c]}
        - {name: b, function: ref, inputs: [a]}
        - {name: c, function: ref, inputs: [b]}""", "features[1] 'a'", "inputs", "dependency cycle: a -> c -> b -> a"),
    ("self-cycle", "- {name: a, function: ref, inputs: [a]}", "features[0] 'a'", "inputs",
     "dependency cycle: a -> a"),
]


@pytest.mark.parametrize(("features", "label", "field", "reason"), [c[1:] for c in FEATURE_ERRORS],
                         ids=[c[0] for c in FEATURE_ERRORS])
def test_feature_error_names_file_feature_and_field(features: str, label: str, field: str, reason: str) -> None:
    """Each invalid feature raises RegistryError naming the file, the feature and the field."""
    with pytest.raises(RegistryError) as info:
        load(features)
    e = info.value
    assert (e.source, e.feature, e.field) == (SRC, label, field)
    assert str(e).startswith(f"{SRC}: {label}: {field}: ")
    assert reason in str(e)


# (id, whole document, field, a fragment of the reason)
DOCUMENT_ERRORS = [
    ("version-unsupported", "version: 2\nfeatures: [{name: a, function: mid_price}]", "version",
     "unsupported registry version 2 (supported: 1)"),
    ("version-str", "version: '1'\nfeatures: [{name: a, function: mid_price}]", "version", "'1'"),
    ("version-bool", "version: true\nfeatures: [{name: a, function: mid_price}]", "version", "True"),
    ("version-missing", "features: [{name: a, function: mid_price}]", "version", "required key is missing"),
    ("features-missing", "version: 1", "features", "required key is missing"),
    ("features-empty", "version: 1\nfeatures: []", "features", "at least one feature"),
    ("features-not-list", "version: 1\nfeatures: {a: mid_price}", "features", "expected a list"),
    ("unknown-top-key", "version: 1\nname: x\nfeatures: [{name: a, function: mid_price}]", "name", "unknown key"),
]


@pytest.mark.parametrize(("text", "field", "reason"), [c[1:] for c in DOCUMENT_ERRORS],
                         ids=[c[0] for c in DOCUMENT_ERRORS])
def test_document_error_names_file_and_field(text: str, field: str, reason: str) -> None:
    """Top-level problems name the file and the key."""
    with pytest.raises(RegistryError) as info:
        load_registry_text(text, source=SRC)
    assert (info.value.source, info.value.feature, info.value.field) == (SRC, None, field)
    assert str(info.value).startswith(f"{SRC}: {field}: ")
    assert reason in str(info.value)


@pytest.mark.parametrize("text", [
    "version: 1\nfeatures: [{name: a, function: mid_price}",  # unclosed flow sequence
    "version: 1\nversion: 1\nfeatures: [{name: a, function: mid_price}]",  # duplicate YAML key
    "version: 1\nfeatures: [{name: a, name: b, function: mid_price}]",
    '{"version": 1, "version": 1, "features": [{"name": "a", "function": "mid_price"}]}',  # duplicate JSON key
    "- just\n- a list",
    "",
])
def test_unparsable_or_non_mapping_document_names_file(text: str) -> None:
    """Syntax errors, duplicate keys and a non-mapping document are RegistryErrors naming the file."""
    with pytest.raises(RegistryError, match=f"^{SRC}: "):
        load_registry_text(text, source=SRC)


def test_first_error_wins_and_nothing_half_loads() -> None:
    """A valid feature before an invalid one does not make the load partially succeed."""
    with pytest.raises(RegistryError, match=r"features\[1\] 'b': window"):
        load("""
            - {name: a, function: mid_price}
            - {name: b, function: vwap}
            - {name: c, function: nope}""")


def test_defaults_are_filled_in() -> None:
    """Sources, cadence and parameter defaults come from the catalogue; windows become ns."""
    reg = load("""
        - {name: depth_bid, function: depth, params: {side: bid}}
        - {name: fund, function: funding_rate}
        - {name: v, function: vwap, window: 500ms}
        - {name: dens, function: liquidity_density, params: {bps: 5}}""")
    depth, fund, vwap, dens = reg.features
    assert depth == FeatureDef("depth_bid", "depth", ("orderbook",), None, S, (("side", "bid"), ("levels", 5)),
                               (), None)
    assert fund.sources == ("funding", "ticker")
    assert vwap.window_ns == 500_000_000 and vwap.params == ()
    assert dens.params == (("bps", 5.0),) and isinstance(dens.param("bps"), float)


def test_explicit_fields_are_kept() -> None:
    """Declared sources, cadence, inputs and normalisation reach the definition."""
    reg = load("""
        - name: fund
          function: funding_rate
          sources: [ticker]
          every: 1m
        - {name: z, function: ref, inputs: [fund], normalise: {method: zscore, n: 30}, every: 15s}
        - {name: w, function: volume, window: 1h}""")
    fund, z, w = reg.features
    assert fund.sources == ("ticker",) and fund.every_ns == 60 * S
    assert z.inputs == ("fund",) and z.every_ns == 15 * S
    assert z.normalise == Normalise("zscore", (("n", 30),)) and z.normalise.n == 30
    assert w.window_ns == 3600 * S


def test_null_optional_keys_mean_absent() -> None:
    """An empty YAML value for an optional key is the same as leaving the key out."""
    explicit = load("""
        - name: a
          function: mid_price
          sources:
          window:
          every:
          params:
          inputs:
          normalise:""")
    assert explicit.content_hash == load("- {name: a, function: mid_price}").content_hash


def test_registry_helpers() -> None:
    """names, column_names, index_of and feature follow the file order."""
    reg = load("""
        - {name: z, function: ref, inputs: [m]}
        - {name: m, function: mid_price}""")
    assert reg.names == reg.column_names == ("z", "m")
    assert reg.index_of("m") == 1 and reg.feature("z").inputs == ("m",)
    assert reg.order == (1, 0) and len(reg) == 2 and reg.version == 1 and reg.source == SRC
    with pytest.raises(KeyError, match="'nope'"):
        reg.index_of("nope")


def test_computation_order_is_stable_topological() -> None:
    """Inputs come first; otherwise file order (hand-worked: a, b, z, c)."""
    reg = load("""
        - {name: z, function: ref, inputs: [b]}
        - {name: a, function: mid_price}
        - {name: b, function: ref, inputs: [a]}
        - {name: c, function: spread_abs}""")
    assert reg.order == (1, 2, 0, 3)


def test_json_documents_load() -> None:
    """A JSON document is accepted, with JSON's float syntax (1e-05 is a float, not a string)."""
    text = '{"version": 1, "features": [{"name": "d", "function": "liquidity_density", "params": {"bps": 1e-05}}]}'
    assert load_registry_text(text).features[0].params == (("bps", 1e-05),)


def _naive_order(inputs: list[int | None]) -> list[int]:
    """Repeatedly take the first feature (file order) whose input is already placed."""
    placed: list[int] = []
    while len(placed) < len(inputs):
        placed.append(next(i for i, dep in enumerate(inputs)
                           if i not in placed and (dep is None or dep in placed)))
    return placed


@st.composite
def dags(draw: st.DrawFn) -> list[int | None]:
    """Random single-input DAGs: feature i may read a feature of lower rank in a random ranking."""
    n = draw(st.integers(1, 9))
    rank = draw(st.permutations(range(n)))
    deps: list[int | None] = []
    for i in range(n):
        lower = [j for j in range(n) if rank[j] < rank[i]]
        deps.append(draw(st.sampled_from([None, *lower])))
    return deps


@settings(max_examples=150, deadline=None)
@given(dags())
def test_order_matches_naive_stable_topological_sort(deps: list[int | None]) -> None:
    """For random DAGs the order equals the naive first-ready-in-file-order sort."""
    lines = [f"- {{name: f{i}, function: mid_price}}" if d is None else
             f"- {{name: f{i}, function: ref, inputs: [f{d}]}}" for i, d in enumerate(deps)]
    reg = load("\n".join(lines))
    assert list(reg.order) == _naive_order(deps)
    assert computation_order(reg.features) == reg.order
