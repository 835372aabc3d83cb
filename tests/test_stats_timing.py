import time

import pytest

from infertool.cli.parse import regression as parse_regression
from infertool.cli.parse import warmup as parse_warmup
from infertool.errors import InfertoolError
from infertool.measure.timing import Budget, run_for
from infertool.stats import Stats, nearest_rank, throughput


def test_nearest_rank_percentiles():
    ordered = list(range(1, 101))  # 1..100
    assert nearest_rank(ordered, 50) == 50
    assert nearest_rank(ordered, 90) == 90
    assert nearest_rank(ordered, 99) == 99
    assert nearest_rank(ordered, 100) == 100
    assert nearest_rank([5.0], 99) == 5.0
    assert nearest_rank([1, 2, 3, 4], 50) == 2  # nearest rank, not interpolation


def test_stats_from_ns():
    stats = Stats.from_ns([1_000_000, 2_000_000, 3_000_000, 4_000_000])
    assert (stats.min, stats.median, stats.max, stats.mean) == (1.0, 2.0, 4.0, 2.5)
    assert stats.std == pytest.approx(1.290994, rel=1e-5)  # sample std
    assert stats.cv == pytest.approx(stats.std / 2.5)
    assert stats.noisy
    assert throughput(stats, batch=8) == {"inferences_per_s": 400.0, "samples_per_s": 3200.0}


def test_budget_runs_until_both_count_and_time():
    samples = run_for(lambda: None, Budget(50, 0.0))
    assert len(samples) == 50
    started = time.perf_counter()
    samples = run_for(lambda: time.sleep(0.001), Budget(3, 0.05))
    assert len(samples) >= 3 and time.perf_counter() - started >= 0.05
    assert all(s >= 1_000_000 for s in samples)


def test_warmup_parsing():
    assert parse_warmup("10") == Budget(10, 0.0)
    assert parse_warmup("200ms") == Budget(3, 0.2)
    assert parse_warmup("2s") == Budget(3, 2.0)
    with pytest.raises(InfertoolError):
        parse_warmup("ten")


def test_regression_parsing():
    assert parse_regression("10%") == pytest.approx(0.1)
    assert parse_regression("2.5%") == pytest.approx(0.025)
    with pytest.raises(InfertoolError, match="ambiguous"):  # 2.5 % or 250 %? the sign says
        parse_regression("2.5")
    with pytest.raises(InfertoolError):
        parse_regression("fast")
