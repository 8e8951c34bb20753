"""Ablation sweeps: grid expansion, the evidence cache, resuming, and the written table."""

import csv
import hashlib
import itertools
import json
from dataclasses import replace

import pytest
import torch

from adapttoken_plugin import SELECTORS, AdaptTokenConfig, Pipeline
from adapttoken_plugin.ablation import Grid, Sweep, annotation_items, expand_grid, needle_items
from adapttoken_plugin.ablation.grid import axes_read
from adapttoken_plugin.ablation.results import SETTING, ResultsLog
from adapttoken_plugin.ablation.stats import bootstrap_interval
from adapttoken_plugin.errors import ConfigError, DatasetError, RegistryError
from adapttoken_plugin.layout import GroupEvidence, VideoLayout, interleaved_groups
from adapttoken_plugin.stage import replay_visits
from adapttoken_plugin.toy import load_needle_model

# 128-frame needle videos, 32 frames per group: 4 interleaved groups of 16 frame pairs (64 tokens each)
BASE = AdaptTokenConfig(frames_per_group=32)
GROUP_SELECTORS = ("attention-topk", "adapttoken", "adapttoken-lite")
TIMING = ("seconds", "setup_seconds", "feature_pass_seconds", "group_pass_seconds", "final_seconds", "evidence")


@pytest.fixture(scope="module")
def trained():
    return load_needle_model()


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    return needle_items(2, (128,), tmp_path_factory.mktemp("videos"), seed=1)


class VisionCalls:
    """Counts vision-tower forward calls (every group pass encodes its group once)."""

    def __init__(self, model):
        self.count = 0
        self.handle = model.model.visual.register_forward_hook(self._hook)

    def _hook(self, *args):
        self.count += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _sweep(trained, items, out, grid, **kw):
    model, processor = trained
    return Sweep(model, processor, BASE, grid, items, out, **kw)


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_grid_expands_each_selector_over_the_axes_it_reads():
    grid = Grid(("full", "uniform", "attention-topk", "adapttoken", "adapttoken-lite"), budgets=("1/16", "64", "2/32"),
                tau=(0.5, 2.0), theta=(0.1, 0.4), scoring_layer=(1, 2), frames_per_group=(32, 64))
    specs = expand_grid(grid, BASE, default_scoring_layer=3)
    by = {name: [s for s in specs if s.selector == name] for name in grid.selectors}
    assert [len(by[n]) for n in grid.selectors] == [1, 2, 8, 16, 32]  # "2/32" is "1/16": not run twice
    assert by["full"][0].to_dict() == {"selector": "full", "budget": None, "tau": None, "theta": None,
                                       "scoring_layer": None, "frames_per_group": None, "settings": ""}
    assert {s.budget for s in by["uniform"]} == {"1/16", "64"} and all(s.tau is None for s in by["uniform"])
    lite = {(s.budget, s.tau, s.theta, s.scoring_layer, s.frames_per_group) for s in by["adapttoken-lite"]}
    assert lite == set(itertools.product(("1/16", "64"), (0.5, 2.0), (0.1, 0.4), (1, 2), (32, 64)))
    assert all(s.theta is None and s.tau is not None for s in by["adapttoken"])
    assert all(s.tau is None and s.theta is None for s in by["attention-topk"])
    # an axis left open takes the base config's value; the scoring layer the model's default
    (only,) = expand_grid(Grid(("adapttoken-lite",)), BASE, default_scoring_layer=3)
    assert (only.budget, only.tau, only.theta, only.scoring_layer, only.frames_per_group) == ("7040", 2.0, 0.2, 3, 32)
    assert only.config(BASE, total_tokens=100).budget == 7040
    assert by["uniform"][0].config(BASE, total_tokens=1000).budget == 62  # 1/16 of 1,000 tokens


def test_bad_grids_are_refused():
    for budget in ("0", "3/2", "half", "-4"):
        with pytest.raises(ConfigError, match="budget"):
            Grid(("uniform",), budgets=(budget,))
    with pytest.raises(RegistryError, match="adapttoken"):
        Grid(("no-such-selector",))
    with pytest.raises(ConfigError):
        Grid(())


def _synthetic_evidence():
    layout = VideoLayout(num_units=16, grid_h=2, grid_w=2)
    gen = torch.Generator().manual_seed(0)
    groups = []
    for g, units in enumerate(interleaved_groups(16, 4)):
        ids = layout.token_ids_of_units(units)
        scores = torch.rand(len(ids), generator=gen)
        order = torch.argsort(scores, descending=True, stable=True)
        groups.append(GroupEvidence(g, units, ids, scores=scores, entropy=[1.0, 0.15, 0.6, 0.05][g],
                                    candidate_ids=ids[order], candidate_features=torch.randn(len(ids), 8,
                                                                                              generator=gen)))
    return layout, groups


def _kept(name, layout, groups, **settings):
    selector = SELECTORS.get(name)(AdaptTokenConfig(selector=name, **settings))
    visited = replay_visits(selector, groups)
    if selector.needs_features:  # every token's features, as the stage passes them
        features = torch.randn(layout.num_tokens, 8, generator=torch.Generator().manual_seed(1))
        return selector.select(layout, visited, features=features).kept_token_ids.tolist()
    return selector.select(layout, visited).kept_token_ids.tolist()


@pytest.mark.parametrize("name", SELECTORS.names())
def test_an_axis_a_selector_is_not_expanded_over_does_not_change_its_selection(name):
    layout, groups = _synthetic_evidence()
    settings = {"budget": 12, "tau": 0.3, "theta": 0.2}
    kept = _kept(name, layout, groups, **settings)
    for axis, other in (("budget", 20), ("tau", 5.0), ("theta", 0.01)):
        if axis not in axes_read(name):
            assert _kept(name, layout, groups, **{**settings, axis: other}) == kept, axis


def test_replayed_lite_stop_rule_reads_theta():
    layout, groups = _synthetic_evidence()
    lite = SELECTORS.get("adapttoken-lite")
    assert [g.group_id for g in replay_visits(lite(AdaptTokenConfig(theta=0.2)), groups)] == [0, 1]
    assert [g.group_id for g in replay_visits(lite(AdaptTokenConfig(theta=0.01)), groups)] == [0, 1, 2, 3]
    assert _kept("adapttoken-lite", layout, groups, budget=12, theta=0.2) != \
        _kept("adapttoken-lite", layout, groups, budget=12, theta=0.01)


def test_cached_evidence_selects_and_answers_as_a_fresh_run(trained, items, tmp_path):
    grid = Grid(GROUP_SELECTORS, budgets=("1/16", "1/4"), tau=(0.5,), theta=(0.2, 1.0), scoring_layer=(2,))
    _sweep(trained, items, tmp_path / "a", grid, cache=tmp_path / "cache").run()
    cached = _sweep(trained, items, tmp_path / "b", grid, cache=tmp_path / "cache").run()
    assert {r["evidence"] for r in cached.rows} == {"hit"}
    model, processor = trained
    by_id = {i.item_id: i for i in items}
    for row in cached.rows:
        item = by_id[row["item_id"]]
        cfg = BASE.replace(**item.settings, selector=row["selector"], budget=row["budget_tokens"],
                           scoring_layer=row["scoring_layer"], **{k: row[k] for k in ("tau", "theta") if row[k]})
        fresh = Pipeline(model, processor, cfg).answer(item.video, item.question, item.options, max_new_tokens=4)
        kept = torch.tensor(fresh.trace.kept_token_ids)
        assert hashlib.sha256(kept.numpy().tobytes()).hexdigest()[:16] == row["kept_sha256"], row
        assert (fresh.letter, fresh.trace.groups_visited) == (row["letter"], row["groups_visited"]), row
    # the grid holds settings that select differently (else this test could not tell them apart)
    assert len({r["kept_sha256"] for r in cached.rows}) > len(items) * 2


def test_second_sweep_hits_the_cache_for_everything_and_runs_no_group_pass(trained, items, tmp_path):
    grid = Grid(GROUP_SELECTORS, budgets=("1/16", "1/8"), tau=(0.5, 2.0))
    with VisionCalls(trained[0]) as calls:
        first = _sweep(trained, items, tmp_path / "a", grid, cache=tmp_path / "cache").run()
    assert (first.cache_hits, first.cache_misses, first.group_passes) == (0, len(items), 4 * len(items))
    assert calls.count == 4 * len(items)  # one encode per group, shared by all 3 selectors x 2 budgets x 2 taus
    with VisionCalls(trained[0]) as calls:
        second = _sweep(trained, items, tmp_path / "b", grid, cache=tmp_path / "cache").run()
    assert calls.count == 0 and second.group_passes == 0
    assert (second.cache_hits, second.cache_misses, second.cache_hit_rate) == (len(items), 0, 1.0)
    assert second.ran == len(first.rows) == len(items) * (2 + 4 + 4)
    assert _without_timing(second.rows) == _without_timing(first.rows)
    saved = json.loads((tmp_path / "b" / "results.json").read_text())["report"]
    assert (saved["cache_hits"], saved["cache_misses"], saved["cache_hit_rate"]) == (len(items), 0, 1.0)
    # the same sweep in the same folder: everything is already done
    again = _sweep(trained, items, tmp_path / "b", grid, cache=tmp_path / "cache").run()
    assert (again.ran, again.skipped) == (0, len(first.rows))


def test_interrupted_sweep_resumes_to_the_uninterrupted_result(trained, items, tmp_path):
    grid = Grid(("uniform", *GROUP_SELECTORS), budgets=("1/16", "1/8"), theta=(0.2, 1.0))
    whole = _sweep(trained, items, tmp_path / "whole", grid).run()

    def stop_after_five(row, seen=[]):  # noqa: B006 - the counter lives across calls
        seen.append(row)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _sweep(trained, items, tmp_path / "cut", grid, on_run=stop_after_five).run()
    lines = (tmp_path / "cut" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 5
    with VisionCalls(trained[0]) as calls:
        resumed = _sweep(trained, items, tmp_path / "cut", grid).run()
    assert (resumed.ran, resumed.skipped) == (len(whole.rows) - 5, 5)
    assert resumed.cache_hits == 1  # the interrupted item's evidence was already on disk
    # group passes only for the items not reached before; the rest is uniform's final features
    assert resumed.group_passes == 4 * (len(items) - 1)
    assert calls.count > 0
    assert _without_timing(resumed.rows) == _without_timing(whole.rows)
    assert [json.loads(line)["run_id"] for line in lines] == [r["run_id"] for r in resumed.rows[:5]]
    ids = [json.loads(line)["run_id"] for line in (tmp_path / "cut" / "results.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(r["run_id"] for r in whole.rows)  # every run once, none recomputed


def test_results_log_drops_a_line_cut_by_an_interruption(tmp_path):
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append({"run_id": "a", "x": 1})
    with open(log.path, "a") as f:
        f.write('{"run_id": "b", "x"')
    assert list(log.load()) == ["a"]
    log.append({"run_id": "c", "x": 3})
    assert list(log.load()) == ["a", "c"]


def test_changing_a_field_the_evidence_depends_on_misses_the_cache(trained, items, tmp_path):
    cache = tmp_path / "cache"
    layer1 = Grid(("adapttoken",), budgets=("1/16",), scoring_layer=(1,))
    assert _sweep(trained, items[:1], tmp_path / "a", layer1, cache=cache).run().cache_misses == 1
    layer2 = replace(layer1, scoring_layer=(2,))
    other = _sweep(trained, items[:1], tmp_path / "b", layer2, cache=cache).run()
    assert (other.cache_hits, other.cache_misses, other.group_passes) == (0, 1, 4)
    wider = replace(layer1, frames_per_group=(64,))
    assert _sweep(trained, items[:1], tmp_path / "c", wider, cache=cache).run().cache_misses == 1
    # a larger budget needs more candidates per group than the entry kept: a miss, then served
    bigger = replace(layer1, budgets=("1/8",))
    assert _sweep(trained, items[:1], tmp_path / "d", bigger, cache=cache).run().cache_misses == 1
    smaller = replace(layer1, budgets=("1/32",), tau=(0.5,))  # tau and a smaller budget: the same evidence
    assert _sweep(trained, items[:1], tmp_path / "e", smaller, cache=cache).run().cache_hits == 1


def test_markdown_table_numbers_equal_the_csv(trained, items, tmp_path):
    grid = Grid(("full", "uniform", "adapttoken", "adapttoken-lite"), budgets=("1/16", "1/8"), tau=(0.5, 2.0))
    _sweep(trained, items, tmp_path, grid).run()
    with open(tmp_path / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(items) * (1 + 2 + 4 + 4)
    def shown(value):  # how the table writes a CSV value: None as "-", floats without a trailing .0
        return "-" if value == "" else f"{float(value):g}" if value.replace(".", "", 1).isdigit() else value

    cells = {}
    for r in rows:
        cells.setdefault((r["subset"], *(shown(r[k]) for k in SETTING)), []).append(r)
    table = (tmp_path / "table.md").read_text().split("\n\n")[0].splitlines()[2:]
    assert len(table) == len(cells)
    for line in table:
        subset, selector, budget, kept, tau, theta, layer, fpg, other, n, accuracy, seconds, visited = \
            [c.strip() for c in line.strip("|").split("|")]
        rs = cells[(subset, selector, budget.split(" ")[0], tau, theta, layer, fpg, "-" if other == "-" else other)]
        assert int(n) == len(rs)
        assert kept == f"{sum(int(r['kept']) for r in rs) / len(rs):.1f}"
        correct = [float(r["correct"] == "True") for r in rs]
        low, high = bootstrap_interval(correct)
        assert accuracy == f"{sum(correct) / len(rs):.3f} [{low:.3f}, {high:.3f}]"
        assert low <= sum(correct) / len(rs) <= high
        assert seconds == f"{sum(float(r['seconds']) for r in rs) / len(rs):.3f}"
        mean_visited = sum(int(r["groups_visited"]) for r in rs) / len(rs)
        assert visited == ("-" if selector in ("full", "uniform") else f"{mean_visited:.1f} / 4")
    for name in ("accuracy.png", "lite_time.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_annotation_file_items_and_errors(items, tmp_path):
    video = items[0].video
    good = [{"video": str(video), "question": "Colour?", "options": ["red", "green"], "answer": "B", "subset": "long"},
            {"video": video.name, "question": "Again?", "options": ["a", "b", "c"], "answer": "A", "id": "x"}]
    (tmp_path / "ann.jsonl").write_text("\n".join(json.dumps(r) for r in good) + "\n")
    (video.parent / "ann.json").write_text(json.dumps(good))
    for path in (tmp_path / "ann.jsonl", video.parent / "ann.json"):
        if path.parent == tmp_path:
            with pytest.raises(DatasetError, match="record 1: video"):  # relative to the file's folder
                annotation_items(path)
            continue
        first, second = annotation_items(path)
        assert (first.item_id, first.answer, first.subset, first.options) == ("0", "B", "long", ("red", "green"))
        assert (second.item_id, second.video, second.subset) == ("x", video, "all")
    bad = {"missing key 'answer'": {k: v for k, v in good[0].items() if k != "answer"},
           "not one of the option letters": {**good[0], "answer": "C"},
           "'options' must be": {**good[0], "options": "red"}}
    for message, record in bad.items():
        (tmp_path / "bad.json").write_text(json.dumps([record]))
        with pytest.raises(DatasetError, match=message):
            annotation_items(tmp_path / "bad.json")
    with pytest.raises(DatasetError, match="does not exist"):
        annotation_items(tmp_path / "nothing.json")


def test_command_line_refuses_bad_grids_and_settings(tmp_path, capsys):
    from adapttoken_plugin.cli import main

    assert main(["ablate", "--selectors", "no-such-selector", "--out", str(tmp_path)]) == 2
    assert "no-such-selector" in capsys.readouterr().err
    assert main(["ablate", "--budgets", "3/2", "--out", str(tmp_path)]) == 2
    assert "budget '3/2'" in capsys.readouterr().err
    assert main(["ablate", "--set", "tau", "--out", str(tmp_path)]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["ablate", "--dataset", str(tmp_path / "none.jsonl"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cache_writes_are_atomic_and_unreadable_entries_are_rebuilt(trained, items, tmp_path, monkeypatch):
    grid = Grid(("adapttoken",), budgets=("1/16",))
    cache = tmp_path / "cache"

    def save_half_then_fail(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(torch, "save", save_half_then_fail)
        with pytest.raises(OSError, match="disk full"):
            _sweep(trained, items[:1], tmp_path / "a", grid, cache=cache).run()
    assert list(cache.iterdir()) == []  # neither an entry nor a temporary file is left
    good = _sweep(trained, items[:1], tmp_path / "b", grid, cache=cache).run()
    (entry,) = cache.iterdir()
    entry.write_bytes(b"not a torch file")
    rebuilt = _sweep(trained, items[:1], tmp_path / "c", grid, cache=cache).run()
    assert (rebuilt.cache_hits, rebuilt.cache_misses, rebuilt.group_passes) == (0, 1, 4)
    assert _without_timing(rebuilt.rows) == _without_timing(good.rows)
    assert _sweep(trained, items[:1], tmp_path / "d", grid, cache=cache).run().cache_hits == 1


@pytest.mark.parametrize("name", ["qwen3_vl", "internvl"])
def test_families_with_per_frame_prompt_text_sweep_from_the_cache_as_fresh_runs(name, tmp_path):
    """Qwen3-VL (timestamps) and InternVL (frame labels) build their prompt from the video's plan."""
    from adapttoken_plugin.video import write_video
    from fixtures.families import FAMILIES

    family = FAMILIES[name]
    model, processor = family.model(), family.build_processor()
    video = tmp_path / "clip.mp4"
    write_video(video, family.video(seed=3), fps=4.0)
    (tmp_path / "ann.json").write_text(json.dumps([{"video": str(video), "question": "Which colour?",
                                                    "options": ["red", "blue"], "answer": "A"}]))
    items = annotation_items(tmp_path / "ann.json")
    base = AdaptTokenConfig(frames_per_group=family.frames_per_group, fps=4.0, max_frames=16)
    grid = Grid(("adapttoken", "adapttoken-lite"), budgets=("3",), theta=(100.0,))
    first = Sweep(model, processor, base, grid, items, tmp_path / "a", cache=tmp_path / "cache").run()
    again = Sweep(model, processor, base, grid, items, tmp_path / "b", cache=tmp_path / "cache").run()
    assert {r["evidence"] for r in again.rows} == {"hit"} and again.group_passes == 0
    for row, cached in zip(first.rows, again.rows):
        cfg = base.replace(selector=row["selector"], budget=3, theta=100.0)
        fresh = Pipeline(model, processor, cfg).answer(video, "Which colour?", ["red", "blue"], max_new_tokens=4)
        kept = hashlib.sha256(torch.tensor(fresh.trace.kept_token_ids).numpy().tobytes()).hexdigest()[:16]
        assert kept == row["kept_sha256"] == cached["kept_sha256"]
        # every selector spends its budget: Lite, stopped after one group, tops up from the unvisited one
        assert row["kept"] == min(3, row["total_tokens"])
        assert row["groups_visited"] == (2 if row["selector"] == "adapttoken" else 1)
        assert fresh.letter == row["letter"] == cached["letter"]


@pytest.mark.parametrize("name", ["qwen3_vl", "internvl", "qwen2_5_vl"])
def test_a_sweep_served_from_the_cache_decodes_no_frame(name, tmp_path, monkeypatch):
    """Group-pass selectors keep features only from the cached candidates, and the prompt (Qwen3-VL timestamps,
    InternVL frame labels) needs only the plan: a fully cached sweep never decodes the video. (Lite stops after
    one group here and tops its budget up from the other, whose cached candidates hold every token.)"""
    from adapttoken_plugin.video import FrameReader, write_video
    from fixtures.families import FAMILIES

    family = FAMILIES[name]
    model, processor = family.model(), family.build_processor()
    video = tmp_path / "clip.mp4"
    write_video(video, family.video(seed=3), fps=4.0)
    (tmp_path / "ann.json").write_text(json.dumps([{"video": str(video), "question": "Which colour?",
                                                    "options": ["red", "blue"], "answer": "A"}]))
    items = annotation_items(tmp_path / "ann.json")
    base = AdaptTokenConfig(frames_per_group=family.frames_per_group, fps=4.0, max_frames=16)
    grid = Grid(GROUP_SELECTORS, budgets=("3",), theta=(100.0,))

    counts = {"frames": 0, "decodes": 0}
    read, decode = FrameReader.read, Pipeline.decode

    def counting_read(reader, indices):
        counts["frames"] += len(indices)
        return read(reader, indices)

    def counting_decode(pipe, plan):
        counts["decodes"] += 1
        return decode(pipe, plan)

    monkeypatch.setattr(FrameReader, "read", counting_read)
    monkeypatch.setattr(Pipeline, "decode", counting_decode)
    first = Sweep(model, processor, base, grid, items, tmp_path / "a", cache=tmp_path / "cache").run()
    assert first.cache_misses == 1 and counts["decodes"] == 1 and counts["frames"] >= family.frames
    counts.update(frames=0, decodes=0)
    cached = Sweep(model, processor, base, grid, items, tmp_path / "b", cache=tmp_path / "cache").run()
    assert {r["evidence"] for r in cached.rows} == {"hit"} and cached.ran == len(first.rows) == 3
    assert counts == {"frames": 0, "decodes": 0}
    assert _without_timing(cached.rows) == _without_timing(first.rows)


def test_vary_adds_an_axis_only_for_the_selectors_that_read_the_setting():
    grid = Grid(("fastv", "adapttoken", "uniform"), budgets=("1/16",), vary=(("early_layer", ("1", "2")),))
    specs = expand_grid(grid, BASE, default_scoring_layer=1)
    assert [(s.selector, s.settings) for s in specs] == [
        ("fastv", "early_layer=1"), ("fastv", "early_layer=2"), ("adapttoken", ""), ("uniform", "")]
    assert specs[1].config(BASE, total_tokens=320).early_layer == 2 and specs[1].config(BASE, 320).budget == 20
    assert specs[2].scoring_layer == 1 and specs[0].scoring_layer is None  # fastv reads early_layer instead
    for bad, match in ((("tau", ("1",)), "own flags"), (("fps", ("1",)), "not a setting the grid can vary"),
                       (("early_layer", ()), "at least one value"), (("early_layer", ("x",)), "early_layer")):
        with pytest.raises(ConfigError, match=match):
            Grid(("fastv",), vary=(bad,))


def test_ablate_command_takes_all_selectors_and_vary(monkeypatch, tmp_path):
    from adapttoken_plugin.ablation import command

    seen = {}

    class Stop(Exception):
        pass

    def fake_load(*args):
        raise Stop

    monkeypatch.setattr(command, "load_model", fake_load)
    monkeypatch.setattr(command, "Grid", lambda *a: seen.setdefault("grid", Grid(*a)))
    with pytest.raises(Stop):
        command._ablate(command.build_parser().parse_args(
            ["--selectors", "all", "--vary", "early_layer=1,3", "--questions", "1", "--lengths", "16",
             "--videos", str(tmp_path), "--out", str(tmp_path / "out")]))
    assert seen["grid"].selectors == tuple(SELECTORS.names())
    assert seen["grid"].vary == (("early_layer", (1, 3)),)


def test_paired_comparisons_count_the_discordant_questions():
    from adapttoken_plugin.ablation.results import paired_comparisons, paired_markdown
    from adapttoken_plugin.ablation.stats import mcnemar_exact

    def row(selector, item, correct, budget="1/16", subset="256 frames", tau=None):
        return {"subset": subset, "selector": selector, "budget": budget, "tau": tau, "theta": None,
                "scoring_layer": None, "frames_per_group": None, "settings": "", "item_id": item, "correct": correct}

    ours = [True] * 9 + [False]
    theirs = [True] * 3 + [False] * 6 + [True]
    rows = [row("adapttoken", i, c, tau=2.0) for i, c in enumerate(ours)]
    rows += [row("uniform", i, c) for i, c in enumerate(theirs)]
    rows += [row("uniform", i, True, budget="1/8") for i in range(10)]  # another budget: not paired
    (pair,) = paired_comparisons(rows)
    assert (pair["questions"], pair["only_reference"], pair["only_other"]) == (10, 6, 1)
    assert pair["mcnemar_p"] == mcnemar_exact(6, 1) and pair["mcnemar_p"] > 0.05  # 6 vs 1 of 7: not significant
    assert pair["difference_95"][0] <= 0.5 <= pair["difference_95"][1]
    (line,) = [x for x in paired_markdown([pair]) if x.startswith("| 256")]
    assert "| uniform | 10 | 0.900 | 0.400 | 6 | 1 | +0.500 [" in line and line.endswith("| no |")


def test_a_readable_entry_of_another_layout_is_rebuilt(trained, items, tmp_path):
    """An entry that loads but lacks a field (written by another version) used to abort the sweep with KeyError."""
    grid = Grid(("adapttoken",), budgets=("1/16",))
    cache = tmp_path / "cache"
    good = _sweep(trained, items[:1], tmp_path / "a", grid, cache=cache).run()
    (entry,) = cache.iterdir()
    payload = torch.load(entry, weights_only=True)
    del payload["groups"][0]["entropy"]
    torch.save(payload, entry)
    rebuilt = _sweep(trained, items[:1], tmp_path / "b", grid, cache=cache).run()
    assert (rebuilt.cache_hits, rebuilt.cache_misses, rebuilt.group_passes) == (0, 1, 4)
    assert _without_timing(rebuilt.rows) == _without_timing(good.rows)


def test_results_log_drops_lines_that_are_not_runs(tmp_path):
    """A `null` line (or any line that is not a run) used to stop every resume with a TypeError."""
    log = ResultsLog(tmp_path / "results.jsonl")
    log.append({"run_id": "a", "x": 1})
    with open(log.path, "a") as f:
        f.write('null\n["b"]\n{"x": 2}\n{"run_id": 3}\n')
    log.append({"run_id": "c", "x": 3})
    assert list(log.load()) == ["a", "c"]
    assert [json.loads(line)["run_id"] for line in log.path.read_text().splitlines()] == ["a", "c"]  # repaired


def test_a_second_sweep_on_the_same_folder_refuses_while_the_first_runs(trained, items, tmp_path):
    """Two sweeps on one --out used to compute most runs twice and write duplicate lines."""
    from adapttoken_plugin.errors import OutputInUseError

    grid = Grid(("uniform",), budgets=("1/16", "1/8"))
    refused = []

    def start_another(row):
        if not refused:
            with pytest.raises(OutputInUseError, match="another sweep .*pid .*another --out") as error:
                _sweep(trained, items, tmp_path, grid).run()
            refused.append(error.value)

    first = _sweep(trained, items, tmp_path, grid, on_run=start_another).run()
    assert refused and first.ran == len(first.rows) == 2 * len(items)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(first.rows)  # no line twice
    again = _sweep(trained, items, tmp_path, grid).run()  # the lock went with the first sweep
    assert (again.ran, again.skipped) == (0, len(first.rows))


def test_command_line_honours_set_over_the_needle_items_own_settings(tmp_path):
    """`--set max_frames=32 fps=1` on the needle set ran at the items' own fps 4 and every frame, without a word."""
    from adapttoken_plugin.cli import main

    common = ["ablate", "--questions", "1", "--lengths", "64", "--selectors", "uniform", "--budgets", "8",
              "--videos", str(tmp_path / "videos"), "--quiet"]
    assert main([*common, "--out", str(tmp_path / "own")]) == 0
    assert main([*common, "--out", str(tmp_path / "set"), "--set", "max_frames=8", "fps=1"]) == 0
    own, given = (json.loads((tmp_path / name / "results.jsonl").read_text().splitlines()[0])
                  for name in ("own", "set"))
    assert own["total_tokens"] == 64 // 2 * 4  # every frame at 4 fps: 32 frame pairs of 4 tokens
    assert given["total_tokens"] == 8 // 2 * 4  # 16 s at 1 fps, capped at 8 frames


@pytest.mark.parametrize("args, message", [
    (["--budgets", "1/0"], "budget '1/0'"), (["--threads", "0"], "--threads: expected an integer >= 1"),
    (["--questions", "0"], "--questions: expected an integer >= 1"), (["--lengths", "0"], "--lengths"),
    (["--tau", "0"], "tau=0.0 is out of range"), (["--dtype", "float17"], "invalid choice"),
    (["--device", "toaster"], "not a torch device"), (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--budgets", str(2**64)], "budget"),
])
def test_command_line_checks_everything_before_the_work(tmp_path, monkeypatch, capsys, args, message):
    from adapttoken_plugin.ablation import command
    from adapttoken_plugin.cli import main

    monkeypatch.setattr(command, "load_model", lambda *a: pytest.fail("the model must not load"))
    monkeypatch.setattr(command, "needle_items", lambda *a, **k: pytest.fail("no video must be written"))
    try:
        code = main(["ablate", *args, "--out", str(tmp_path / "out")])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2 and message in capsys.readouterr().err


def test_command_line_refuses_an_out_that_is_a_file_and_a_missing_plot_package(tmp_path, monkeypatch, capsys):
    """Both used to surface after the work: `--out FILE` as a raw FileExistsError, a missing matplotlib after the
    whole sweep had run, at the plot step."""
    import sys

    from adapttoken_plugin.ablation import command
    from adapttoken_plugin.cli import main

    monkeypatch.setattr(command, "load_model", lambda *a: pytest.fail("the model must not load"))
    monkeypatch.setattr(command, "needle_items", lambda *a, **k: pytest.fail("no video must be written"))
    (tmp_path / "file").write_text("")
    assert main(["ablate", "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["ablate", "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'adapttoken[bench]'" in capsys.readouterr().err and not (tmp_path / "out").exists()
