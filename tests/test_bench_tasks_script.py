"""scripts/bench_tasks.py: the paired comparisons, tau against equal allocation, the strategy list and
`--from-results` (the run itself is a benchmark)."""

import sys

import pytest

from adapttoken_plugin import SELECTORS, AdaptTokenConfig
from fixtures.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_tasks")


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
    assert configs[bench.NO_DEDUP].selector == "adapttoken" and not configs[bench.NO_DEDUP].dedup
    assert configs["adapttoken"].dedup  # the default keeps it


def test_parts_of_adapttoken_separate_dedup_from_the_allocation(bench):
    rows = _rows("adapttoken", [1] * 20) + _rows(bench.NO_DEDUP, [1] * 12 + [0] * 8)
    rows += _rows("attention-topk", [1] * 2 + [0] * 18) + _rows("uniform", [0] * 20)
    rows += [r | {"fraction": 64} for r in _rows("adapttoken", [0] * 20) + _rows("attention-topk", [1] * 20)]
    out = {(c["reference"], c["other"]): c for c in bench.parts_of_adapttoken(rows)}
    assert set(out) == {("adapttoken", bench.NO_DEDUP), (bench.NO_DEDUP, "attention-topk")}
    assert all(c["fraction"] == 16 for c in out.values())  # only where the variant ran
    dedup, allocation = out[("adapttoken", bench.NO_DEDUP)], out[(bench.NO_DEDUP, "attention-topk")]
    assert (dedup["only_adapttoken"], dedup["only_other"]) == (8, 0) and dedup["significant"]
    assert (allocation["only_adapttoken"], allocation["only_other"]) == (10, 0)


def test_budget_share_is_the_chosen_groups_part_of_the_given_budgets(bench):
    from types import SimpleNamespace as G

    traced = [G(group_id=0, budget=6), G(group_id=1, budget=2), G(group_id=2, budget=None), G(group_id=3, budget=0)]
    assert bench.budget_share(traced, {1}) == 0.25
    assert bench.budget_share(traced, {0, 2}) == 0.75  # a group given no budget adds nothing
    assert bench.budget_share([G(group_id=0, budget=None)], {0}) is None  # a selector that allocates nothing


def test_tau_against_equal_pairs_each_tau_with_attention_topk_at_its_own_budgets(bench):
    rows = _rows("attention-topk", [0] * 10 + [1] * 10) + _rows("adapttoken", [1] * 20)
    rows += _rows("adapttoken tau=0.25", [1] * 19 + [0]) + _rows("uniform", [1] * 20)
    rows += [r | {"fraction": 64} for r in _rows("attention-topk", [0] * 20)]  # only the default runs at 1/64
    rows += [r | {"fraction": 64} for r in _rows("adapttoken", [0] * 20)]
    out = {(c["reference"], c["fraction"]): c for c in bench.tau_against_equal(rows)}
    assert set(out) == {("adapttoken", 16), ("adapttoken", 64), ("adapttoken tau=0.25", 16)}
    assert all(c["other"] == "attention-topk" for c in out.values())
    assert out[("adapttoken", 16)]["only_adapttoken"] == 10 and out[("adapttoken", 16)]["significant"]
    assert out[("adapttoken tau=0.25", 16)]["only_adapttoken"] == 10
    assert out[("adapttoken tau=0.25", 16)]["only_other"] == 1
    assert out[("adapttoken", 64)]["difference"] == 0.0 and not out[("adapttoken", 64)]["significant"]


def test_from_results_summarises_an_earlier_run_again_without_running_it(bench, tmp_path, monkeypatch):
    import json

    rows = _rows("adapttoken", [1] * 6) + _rows("attention-topk", [1, 0] * 3)
    for r in rows:
        r.update(budget=32, kept=32, total_tokens=512, letter="A", answer="A", groups=8, groups_visited=8,
                 evidence_tokens_kept=1, evidence_tokens=16, evidence_units_hit=1.0,
                 evidence_group_budget_share=None, evidence_group_equal_share=0.125, seconds=1.0,
                 **{k: 0.25 for k in bench.STAGE_SECONDS})
    groups = [{"task": "order", "seed": 0, "frames": 256, "group": 0, "entropy": 0.5, "evidence": True,
               "adapttoken_correct": True}]
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "results.json").write_text(json.dumps({"runs": rows, "groups": groups}))
    (earlier / "summary.json").write_text(json.dumps({"args": {"sweep_fraction": 16, "out": "x"}, "seconds": 12.5}))
    monkeypatch.setattr(bench, "run_questions", lambda *a: pytest.fail("--from-results must not run questions"))
    again = ["--from-results", str(earlier), "--out", str(tmp_path / "again")]
    monkeypatch.setattr(sys, "argv", ["bench_tasks.py", *again])
    bench.main()
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert summary["seconds"] == 12.5
    accuracy = {s["strategy"]: s["accuracy"] for s in summary["summary"]}
    assert accuracy == {"adapttoken": 1.0, "attention-topk": 0.5}
    assert summary["tau_against_equal"][0]["only_adapttoken"] == 3
    assert json.loads((tmp_path / "again" / "results.json").read_text())["runs"] == rows
    assert (tmp_path / "again" / "tasks.png").stat().st_size > 0


def test_from_results_names_a_folder_without_an_earlier_run(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench_tasks.py", "--from-results", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="no results.json there"):
        bench.main()
