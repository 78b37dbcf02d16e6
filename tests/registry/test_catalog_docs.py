"""Every catalogue function and normalisation documents its unit and what it means, in one line."""

from __future__ import annotations

import pytest

from registry import RESERVED_NAMES, RegistryError, load_registry_text
from registry.catalog import FUNCTIONS, NORMALISATION_DOCS, NORMALISATIONS


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_a_unit_and_a_one_line_description(name: str) -> None:
    spec = FUNCTIONS[name]
    assert spec.unit.strip() and spec.description.strip()
    assert "\n" not in spec.unit + spec.description and len(spec.description) <= 120


def test_every_normalisation_has_a_unit_and_a_description() -> None:
    assert set(NORMALISATION_DOCS) == set(NORMALISATIONS)
    for unit, text in NORMALISATION_DOCS.values():
        assert unit.strip() and text.strip() and "\n" not in unit + text


@pytest.mark.parametrize("name,unit", [
    ("mid_price", "quote currency"), ("spread_rel", "ratio"), ("log_return", "log return"), ("volume", "base units"),
    ("churn_rate", "changes per second"), ("time_to_funding", "minutes"), ("time_of_day", "fraction of a UTC day"),
])
def test_units_named_in_the_issue(name: str, unit: str) -> None:
    assert FUNCTIONS[name].unit == unit


def test_zscore_is_in_standard_deviations() -> None:
    assert NORMALISATION_DOCS["zscore"][0] == "standard deviations"


def test_registry_hash_is_a_reserved_feature_name() -> None:
    """The feature log's last column; a feature of that name would clash with it."""
    assert "registry_hash" in RESERVED_NAMES
    with pytest.raises(RegistryError, match="reserved"):
        load_registry_text("version: 1\nfeatures:\n  - {name: registry_hash, function: mid_price}\n")
