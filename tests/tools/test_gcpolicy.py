"""The shard's GC schedule: frozen start-up heap, no automatic collection, collections after ticks."""

from __future__ import annotations

import gc

import pytest

from tools.shard.gcpolicy import GcPolicy


def test_collection_runs_after_ticks_only_and_is_given_back() -> None:
    policy = GcPolicy(full_every=3)
    try:
        policy.start()
        assert not gc.isenabled() and gc.get_freeze_count() > 0
        for tick in range(1, 4):
            for _ in range(1000):
                a: list = []
                a.append(a)  # a cycle: only a collection frees it, and automatic ones are off
            before = policy.collected
            policy.after_tick()
            assert policy.collected - before >= 999, tick  # the last one is still bound to `a`
        assert policy.ticks == 3
    finally:
        policy.stop()
        gc.unfreeze()
    assert gc.isenabled()


def test_full_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="full_every"):
        GcPolicy(full_every=0)
