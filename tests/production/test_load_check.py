"""The database check of the load and fault tests (bench/load.py) finds what it looks for."""

from __future__ import annotations

import json

import pytest

from bench.load import Stats, check_blocks, check_database, prepare

WEIGHTS = {"a": 1, "b": 1}


def _rows(arms: str, stratum: str = "loc", size: int = 4) -> list[tuple[str, str]]:
    return [
        (arm, json.dumps({"stratum": stratum, "block": i // size, "position": i % size,
                          "block_size": size}))
        for i, arm in enumerate(arms)
    ]  # fmt: skip


def test_balanced_blocks_pass_and_unbalanced_or_gapped_ones_do_not() -> None:
    assert check_blocks(_rows("abba" + "baab" + "a"), WEIGHTS) == (3, [])
    assert check_blocks(_rows("abbb"), WEIGHTS)[1] == ["loc block 0: a 1x", "loc block 0: b 3x"]
    assert check_blocks(_rows("abba" + "aa"), WEIGHTS)[1] == []
    assert check_blocks(_rows("abba" + "aaa"), WEIGHTS)[1] == ["loc block 1: a 3x"]
    gapped = _rows("abba")
    del gapped[1]
    assert "loc: positions have gaps" in check_blocks(gapped, WEIGHTS)[1]


@pytest.mark.postgres
def test_an_acknowledged_event_that_is_not_stored_is_found(scratch_url: str) -> None:
    setup = prepare(scratch_url, 1)
    stats = Stats()
    stats.acknowledged["0" * 32] = ("no-such-visit", setup.outcomes[0], "stored")
    check = check_database(scratch_url, setup, stats)
    assert check.acknowledged_missing == 1 and not check.ok
    assert check_database(scratch_url, setup, Stats()).ok
