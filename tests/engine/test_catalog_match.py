"""The registry's catalogue and the engine's computations name the same functions, one to one."""

from __future__ import annotations

from engine.functions import FUNCTIONS as COMPUTATIONS
from registry.catalog import FUNCTIONS as CATALOGUE


def test_every_catalogue_function_has_exactly_one_computation() -> None:
    assert sorted(CATALOGUE) == sorted(COMPUTATIONS)
