"""scripts/bench_tasks.py: the paired comparisons and the strategy list (the run itself is a benchmark)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from adapttoken_plugin import SELECTORS, AdaptTokenConfig

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location("bench_tasks", SCRIPTS / "bench_tasks.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPTS))


def _rows(strategy, outcomes):
    return [{"task": "order", "frames": 256, "fraction": 16, "strategy": strategy, "seed": s, "correct": c}
            for s, c in enumerate(outcomes)]


def test_paired_counts_discordant_questions_and_flags_only_clear_differences(bench):
    rows = _rows("adapttoken", [1] * 20) + _rows("uniform", [0] * 20) + _rows("random", [1] * 19 + [0])
    rows += _rows("adapttoken tau=0.5", [0] * 20)  # sweeps are not compared
    out = {c["other"]: c for c in bench.paired(rows)}
    assert set(out) == {"uniform", "random"}
    assert out["uniform"]["only_adapttoken"] == 20 and out["uniform"]["only_other"] == 0
    assert out["uniform"]["significant"] and out["uniform"]["difference"] == 1.0
    assert out["random"]["only_adapttoken"] == 1 and not out["random"]["significant"]


def test_strategies_are_every_selector_plus_oracle_and_the_sweeps(bench):
    base = AdaptTokenConfig(selector="adapttoken")
    configs = bench.strategy_configs(bench.selectors_run(), base, sweep=True)
    assert set(SELECTORS.names()) | {"oracle"} <= set(configs)
    assert {configs[f"adapttoken tau={t:g}"].tau for t in bench.TAUS} == set(bench.TAUS)
    assert {configs[f"adapttoken-lite theta={t:g}"].theta for t in bench.THETAS} == set(bench.THETAS)
