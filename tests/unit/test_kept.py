"""Kept values (services/kept.py): per key for the keeping time, the newest few keys only, none kept when the time is 0."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from studio_core.services.kept import Kept

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def counter():
    calls = []

    def add_up(now):
        calls.append(now)
        return len(calls)

    return calls, add_up


def test_a_value_is_kept_for_the_keeping_time_then_added_up_again():
    kept, (calls, add_up) = Kept(60), counter()
    assert kept.get("week", T0, add_up) == 1
    assert kept.get("week", T0 + timedelta(seconds=59), add_up) == 1  # kept
    assert kept.get("week", T0 + timedelta(seconds=60), add_up) == 2  # stale
    assert kept.get("week", T0 + timedelta(seconds=61), add_up, fresh=True) == 3  # asked for
    assert kept.get("week", T0, add_up) == 4  # the clock went back: not trusted
    assert calls[0] == T0


def test_the_newest_keys_are_kept_and_zero_keeps_nothing():
    kept, (_, add_up) = Kept(60, size=2), counter()
    assert [kept.get(k, T0, add_up) for k in ("a", "b", "c")] == [1, 2, 3]
    assert kept.get("c", T0, add_up) == 3 and kept.get("b", T0, add_up) == 2
    assert kept.get("a", T0, add_up) == 4  # the oldest went when the third came
    never, (calls, add_up) = Kept(0), counter()
    assert [never.get("a", T0, add_up) for _ in range(3)] == [1, 2, 3] and len(calls) == 3
