"""Which vectors get scored, by which model: the skew guard and the invalid-book policy.

A vector is scored only by a model trained on its registry: its ``registry_hash`` must equal the
active model's and its width the model's feature count. Everything else is refused and counted by
reason; a foreign registry hash is also counted per hash (`skew`), and `admit` says when a hash is
seen for the first time so the caller logs it once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from api.wire import WireVector
from model_service.artifacts import LoadedModel

#: Reasons a vector is not scored.
REASONS = ("no_model", "registry_mismatch", "width_mismatch", "invalid_book", "symbol_not_scored")


@dataclass
class Verdict:
    """`admit`'s answer: score it, or the reason not to; `new_skew` on the first vector of a foreign hash."""

    reason: str | None
    new_skew: bool = False


class Scorer:
    """The active model and the rules that guard it."""

    def __init__(self, invalid_book: str = "skip", symbols: Iterable[str] = ()) -> None:
        if invalid_book not in ("skip", "score"):
            raise ValueError(f"invalid_book: {invalid_book!r} is not 'skip' or 'score'")
        self.invalid_book = invalid_book
        self.symbols = frozenset(symbols)
        self.model: LoadedModel | None = None
        self.scored = 0
        self.refused: Counter[str] = Counter()
        #: Vectors refused per foreign registry hash.
        self.skew: Counter[str] = Counter()
        #: The registry hash of the last vector seen, and whether it was refused for its hash.
        self.last_hash = ""
        self.last_skewed = False

    def activate(self, model: LoadedModel) -> None:
        """Score with `model` from now on."""
        self.model = model
        self.last_skewed = False

    def admit(self, v: WireVector, model: LoadedModel | None) -> Verdict:
        """Whether `v` may be scored by `model` (the active one, read once per batch); counted when not."""
        if self.symbols and v.symbol not in self.symbols:
            return self._refuse("symbol_not_scored")
        m = model
        self.last_hash = v.registry_hash
        if m is None:
            return self._refuse("no_model")
        if v.registry_hash != m.registry_hash:
            self.last_skewed = True
            self.skew[v.registry_hash] += 1
            verdict = self._refuse("registry_mismatch")
            verdict.new_skew = self.skew[v.registry_hash] == 1
            return verdict
        self.last_skewed = False
        if len(v.values) != len(m.feature_names):
            return self._refuse("width_mismatch")
        if not v.book_valid and self.invalid_book == "skip":
            return self._refuse("invalid_book")
        return Verdict(None)

    def score(self, vectors: list[WireVector], model: LoadedModel) -> np.ndarray:
        """Probabilities (rows in `vectors` order, columns -1, 0, 1) of vectors `admit` let through, in one call."""
        self.scored += len(vectors)
        return model.predict(np.stack([v.values for v in vectors]))

    def _refuse(self, reason: str) -> Verdict:
        self.refused[reason] += 1
        return Verdict(reason)
