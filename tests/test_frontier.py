"""The budget frontier: schedule compression, fronts and their arithmetic on hand-made histories, finding
cost charged once per seed to every ticket point, and a rerun that trains nothing."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from lth_lightning.modules.schedule import lr_factor
from lth_lightning.reports.fronts import (
    cheapest,
    check_cost,
    envelope,
    headline,
    level_costs,
    run_points,
    spread,
    verdict,
)
from lth_lightning.results import (
    BudgetRow,
    BudgetRun,
    EpochRecord,
    FrontierResult,
    FrontPoint,
    Ledger,
    LevelCost,
    StageResult,
    Verdict,
    read_json,
)
from lth_lightning.tasks.frontier import arm_names, budget_config, run_frontier
from tests.conftest import assert_png


def _p(passes: float, acc: float) -> FrontPoint:
    return FrontPoint(passes, passes / 100, acc)


@pytest.mark.parametrize("budget", [1, 2, 5, 8])
def test_schedule_compresses_with_the_budget(make_cfg, budget):
    """Warmup keeps its share of the full schedule; the ×0.1 drops land at 50 % and 75 % of any budget."""
    cfg = make_cfg("experiment=frontier")  # dense 20 epochs, warmup 2, milestones 0.5/0.75
    run = budget_config(cfg, seed=3, budget=budget, lr=0.2)
    assert run.seed == 3 and run.optim.lr == 0.2 and run.pipeline.ticket_epochs == run.pipeline.dense_epochs == budget
    assert run.optim.warmup_epochs == pytest.approx(2 * budget / 20)
    per_epoch = 10
    total = budget * per_epoch
    factors = [lr_factor(step, total, per_epoch, run.optim) for step in range(total)]
    warm = round(run.optim.warmup_epochs * per_epoch)
    assert factors[warm] == pytest.approx(1.0)
    assert factors[total // 2 - 1] == pytest.approx(1.0) and factors[total // 2] == pytest.approx(0.1)
    third = -(-3 * total // 4)  # the first step at or past 75 %
    assert factors[third - 1] == pytest.approx(0.1) and factors[third] == pytest.approx(0.01)


def test_envelope_keeps_only_points_better_than_every_cheaper_one():
    points = [_p(300, 50), _p(100, 20), _p(200, 10), _p(200, 40), _p(400, 45), _p(500, 60)]
    assert [(p.passes, p.accuracy) for p in envelope(points)] == [(100, 20), (200, 40), (300, 50), (500, 60)]
    front = envelope(points)
    assert cheapest(front, 40) == 200 and cheapest(front, 41) == 300 and cheapest(front, 61) is None
    assert cheapest(front, 10) == 100


def test_run_points_charge_finding_and_keep_the_best_so_far():
    history = [EpochRecord(1, 50, 30.0, 100, 1.0), EpochRecord(2, 60, None, 200, 2.0),
               EpochRecord(3, 70, 25.0, 300, 3.0)]
    result = StageResult("ticket", 3, history, Ledger(300, 3.0), 0.8)
    find = StageResult("find", 1, [], Ledger(1000, 10.0), 0.0)
    points = run_points(result, "val_robust", find)
    assert [(p.passes, p.seconds, p.accuracy) for p in points] == [(1100, 11.0, 30.0), (1200, 12.0, 30.0),
                                                                  (1300, 13.0, 30.0)]
    assert run_points(result, "val_robust", None)[0].passes == 100
    assert points[0].macs is None  # MACs only where both stages counted them
    result.macs, find.macs = 5, 2
    assert [p.macs for p in run_points(result, "val_robust", find)] == [2000 + 500, 2000 + 1000, 2000 + 1500]


def test_regime_rows_read_boost_and_saving_at_dense_best_minus_one():
    """A sweep job's frontier.json becomes one aggregate row: tops, epoch-1 boost, saving at dense's top − 1."""
    from lth_lightning.reports.aggregate import _frontier_metrics
    from lth_lightning.results import BudgetRun

    def run(arm, seed, accs, find=0.0):
        points = [FrontPoint(find + 100 * (i + 1), find / 100 + i + 1, a) for i, a in enumerate(accs)]
        return BudgetRun(arm, seed, 3, 0.1, find, find / 100, max(accs), None, None, points, 2 if find else None)

    runs = [run("ticket", 0, [30, 50, 60], 50), run("ticket", 1, [34, 52, 62], 50),
            run("dense", 0, [10, 40, 61]), run("dense", 1, [12, 44, 63])]
    rows = [BudgetRow(a, 3, 0.1, spread([0.0]), spread([0.0]), spread([0.0])) for a in ("ticket", "dense")]
    result = FrontierResult("val_robust", "PGD", [3], [0.1], [0, 1], rows, [], "", runs)
    row = _frontier_metrics(result)
    assert row["boost"] == 21.0 and row["boost_std"] == pytest.approx(2 ** 0.5, abs=0.01)  # 20 and 22 points
    assert row["ticket_top"] == 61.0 and row["dense_top"] == 62.0 and row["level"] == 61.0
    # each seed races to its own dense best − 1 (60, 62): the ticket gets there at 350 passes, dense at 300
    # both seeds differ by the same 50 passes, but checks are 100 passes apart: the interval is one check each side
    assert row["saving_pct"] == pytest.approx(-16.67) and row["verdict"] == "tie (90 % CI -50.0 to +16.7 %)"
    assert row["saving_seeds"] == "2 of 2" and row["collapsed"] == "none"
    assert row["find_epochs"] == 2.0
    runs[0].collapsed = True  # one ticket run predicted one class at its best epoch: counted per run (#31) ...
    row = _frontier_metrics(result)
    assert row["collapsed"] == "ticket 1 of 2 runs"
    assert row["ticket_top"] is None  # ... and its points enter no front: seed 0 has no top, so no mean top
    runs[1].collapsed = True
    row = _frontier_metrics(result)
    assert row["collapsed"] == "ticket 2 of 2 runs" and row["saving_pct"] is None  # no saving from a net at chance


def _v(arm, base, confidence=0.9, names=("ticket", "dense")):
    v = verdict(arm, base, confidence, names, resolution=0.0)
    return v.saving, v.text


def test_spread_and_verdicts():
    assert spread([1.0, 3.0]).mean == 2.0 and spread([1.0, 3.0]).std == pytest.approx(2 ** 0.5)
    assert spread([1.0, None]).mean is None and spread([1.0, None]).n == 1
    # a clear win: paired differences 50, 49, 51 -> mean 50 ± t(0.95, 2) · 1/√3 = 1.686, of a 100-pass baseline
    saving, say = _v([50.0, 52.0, 48.0], [100.0, 101.0, 99.0])
    assert saving == pytest.approx(50.0) and say == "ticket cheaper (90 % CI +48.3 to +51.7 %)"
    assert _v([150.0, 160.0, 155.0], [100.0, 101.0, 99.0])[1].startswith("dense cheaper (90 % CI -")
    assert _v([90.0, 110.0, 60.0], [100.0, 80.0, 105.0])[1].startswith("tie (90 % CI -")  # holds 0
    # the same noisy differences at a lower confidence: a narrower interval, still a tie
    assert _v([90.0, 110.0, 60.0], [100.0, 80.0, 105.0], 0.5)[1].startswith("tie")
    # reached by 2 of 3 seeds: only the seeds where both arms get there are compared
    saving, say = _v([50.0, None, 48.0], [100.0, 101.0, 99.0])
    assert saving == pytest.approx(100 * (1 - 49.0 / 99.5)) and say.endswith(", 2 of 3 seeds)")
    assert _v([50.0], [100.0]) == (50.0, "ticket cheaper (1 seed: no interval)")
    assert _v([150.0], [100.0]) == (-50.0, "dense cheaper (1 seed: no interval)")
    assert _v([None, None], [100.0, 100.0]) == (None, "not reached (dense: 2 of 2 seeds)")
    assert _v([50.0, 50.0], [None, None]) == (None, "dense not reached")  # no baseline seed at all
    assert _v([50.0, None], [None, None]) == (None, "dense not reached (the arm: 1 of 2 seeds)")
    # one baseline seed reaches the level: not "dense not reached" any more
    assert _v([50.0, 50.0], [None, 100.0]) == (50.0, "ticket cheaper (1 seed, 1 of 2 seeds: no interval)")
    # against a control the reference is named as such
    assert _v([150.0, 160.0], [100.0, 100.0], names=("ticket", "control"))[1].startswith("control cheaper")


def _verdict(arm, base):
    return verdict(arm, base, 0.9, resolution=0.0)


def test_ahead_is_decided_on_the_intervals_lower_end():
    """#25: costs [80, 92, 90] vs [100, 100, 100] save 12.7 % on average, but the 90 % interval's lower end is
    +1.8 %: not "at least 10 % cheaper". [85, 86, 87] saves 14 % with an interval from 12.3 %: ahead."""
    loose = _verdict([80.0, 92.0, 90.0], [100.0, 100.0, 100.0])
    assert loose.saving == pytest.approx(12.67, abs=0.01) and loose.low == pytest.approx(1.8, abs=0.05)
    assert loose.text.startswith("ticket cheaper (90 % CI +1.8 to +23.5 %") and not loose.ahead(10.0)
    assert loose.ahead(1.0)
    tight = _verdict([85.0, 86.0, 87.0], [100.0, 100.0, 100.0])
    assert tight.low == pytest.approx(12.3, abs=0.05) and tight.ahead(10.0)
    assert not _verdict([50.0], [100.0]).ahead(10.0)  # one seed: no interval, never ahead
    assert not _verdict([50.0, None, 50.0], [100.0, 100.0, 100.0]).ahead(10.0)  # 2 of 3 seeds: not shown
    assert _verdict([50.0, 50.0], [None, None]).ahead(10.0)  # every seed there, the baseline on none
    assert not _verdict([50.0, None], [None, None]).ahead(10.0)
    # a saving over some seeds only is printed with its seed count
    assert _verdict([50.0, None, 48.0], [100.0, 101.0, 99.0]).saving_label() == "50.8 % (2 of 3 seeds)"
    assert tight.saving_label() == "14.0 %"


def test_no_verdict_rests_on_a_zero_width_interval():
    """#31: costs move only at validation checks, so seeds often share one paired difference; its standard
    deviation is 0. verdict([1, 1], [2, 2]) once read "CI +50.0 to +50.0" and counted as ahead."""
    bare = verdict([1.0, 1.0], [2.0, 2.0], 0.9, resolution=0.0)
    assert "no interval" in bare.text and not bare.ahead(10.0)
    # at a check cost of 1 (as coarse as the difference itself) the interval is 50 ± 50 %: a tie, not ahead
    coarse = verdict([1.0, 1.0], [2.0, 2.0], 0.9, resolution=1.0)
    assert coarse.text == "tie (90 % CI +0.0 to +100.0 %)" and not coarse.ahead(10.0)
    # checks ten times finer: ahead, on an interval one check wide each side
    fine = verdict([10.0, 10.0], [20.0, 20.0], 0.9, resolution=1.0)
    assert (fine.low, fine.high) == (pytest.approx(45.0), pytest.approx(55.0)) and fine.ahead(10.0)
    # a noisy interval wider than one check keeps its own width
    noisy = verdict([85.0, 86.0, 87.0], [100.0, 100.0, 100.0], 0.9, resolution=0.5)
    assert noisy.low == pytest.approx(12.3, abs=0.05)


def test_check_cost_is_the_largest_step_between_checks():
    runs = [BudgetRun("ticket", 0, 2, 0.1, 0.0, 0.0, 1.0, None, None,
                      [FrontPoint(p, 0.0, 10.0 * i) for i, p in enumerate([5.0, 8.0, 14.0])]),
            BudgetRun("dense", 0, 1, 0.1, 0.0, 0.0, 1.0, None, None, [FrontPoint(4.0, 0.0, 1.0)])]
    assert check_cost(runs, ["ticket"], "passes") == 6.0  # 5 -> 8 -> 14
    assert check_cost(runs, ["dense"], "passes") == 4.0  # one check: its whole cost
    assert check_cost(runs, ["ticket", "dense"], "passes") == 6.0 and check_cost(runs, ["reinit"], "passes") == 0.0


def test_the_verdict_is_against_the_best_dense_variant_per_seed(make_cfg):
    """dense_eps_ramp gets to 60 % at 200 passes, dense at 400: the ticket (at 300) loses to the strongest."""
    from lth_lightning.results import BudgetRun

    cfg = make_cfg("experiment=frontier", "frontier.seeds=[0,1,2]", "frontier.levels=[60]",
                   "++frontier.baselines={dense_eps_ramp:['attack.eps_warmup_epochs=2']}")
    assert cfg.frontier.baselines == {"dense_eps_ramp": ["attack.eps_warmup_epochs=2"]}

    def run(arm, seed, cost):
        points = [FrontPoint(cost + seed - 10, 1.0, 50.0), FrontPoint(cost + seed, 1.0, 60.0)]  # checks 10 apart
        return BudgetRun(arm, seed, 1, 0.1, 0.0, 0.0, 60.0, None, None, points)

    runs = [run(a, s, c) for s in (0, 1, 2) for a, c in (("ticket", 300), ("dense", 400), ("dense_eps_ramp", 200))]
    (level,) = level_costs(runs, arm_names(cfg), cfg.frontier)
    assert level.baseline == "best_baseline" and level.passes["best_baseline"].mean == pytest.approx(201.0)
    assert level.verdicts["ticket"].startswith("best baseline cheaper")  # the reference by its name
    assert level.savings["ticket"] == pytest.approx(100 * (1 - 301 / 201))  # against dense_eps_ramp, not dense
    assert level.cheapest == "dense_eps_ramp"
    headline_ = headline([level], 10.0, "val_robust")
    assert "than the best baseline at no level of val_robust" in headline_


def test_the_second_verdict_is_against_the_best_control_per_seed(make_cfg):
    """narrow reaches 60 % at 250 on seeds 0 and 2, random_channels at 240 on seed 1: per seed the best control.
    The ticket (300, charged its finding) loses to it; dense (400) loses to the ticket."""
    from lth_lightning.results import BudgetRun
    from lth_lightning.tasks.frontier import controls_of

    cfg = make_cfg("experiment=frontier", "prune.structure=channel", "frontier.seeds=[0,1,2]", "frontier.levels=[60]",
                   "frontier.arms=[ticket,dense,random_channels,narrow]")
    assert controls_of(cfg) == {"ticket": ["random_channels", "narrow"]}

    def run(arm, seed, cost):
        points = [FrontPoint(cost - 5, 1.0, 50.0), FrontPoint(cost, 1.0, 60.0)]  # checks 5 passes apart
        return BudgetRun(arm, seed, 1, 0.1, 0.0, 0.0, 60.0, None, None, points)

    costs = {"ticket": [300, 301, 302], "dense": [400, 400, 401], "narrow": [250, 500, 251],
             "random_channels": [600, 240, 600]}
    runs = [run(a, s, c[s]) for a, c in costs.items() for s in (0, 1, 2)]
    (level,) = level_costs(runs, arm_names(cfg), cfg.frontier, controls_of(cfg))
    assert level.judged["ticket"].text.startswith("ticket cheaper")
    # every arm's verdict names that arm (#32: narrow's once read "ticket cheaper"), and the reference by its name
    assert level.judged["narrow"].text.startswith(("narrow cheaper", "tie", "dense cheaper"))
    assert level.judged["random_channels"].text.startswith(("random_channels cheaper", "tie", "dense cheaper"))
    assert "ticket" not in level.judged["narrow"].text + level.judged["random_channels"].text
    control = level.controlled["ticket"]
    assert control.saving == pytest.approx(100 * (1 - 301 / 247)) and control.text.startswith("best control cheaper")
    line = headline([level], 10.0, "val_robust")
    assert "at least 10 % cheaper than dense (by its interval's lower end, every seed) at 60.0 %" in line
    assert "Against its best control it is at least 10 % cheaper at no level" in line
    assert level.cheapest == "ticket"  # among arms that reach the level on every seed: 301 < 334 (narrow) < 400


def _level(acc, saving, low, seeds=3, n=3, text="ticket cheaper"):
    return LevelCost(acc, {}, {}, saving, text, judged={"ticket": Verdict(saving, low, None, seeds, n, seeds, n, text)})


def test_headline_names_every_level_where_the_ticket_is_ahead_and_no_more():
    """#25: the levels where the ticket is ahead are listed, never "up to" a level above a tie."""
    levels = [_level(50, 40.0, 30.0), _level(60, 5.0, -3.0, text="tie"), _level(70, 14.0, 12.0),
              _level(80, 12.0, 2.0)]
    line = headline(levels, 10.0, "val_robust")
    assert "at 50.0 % and 70.0 % val_robust; not at 60.0 %: tie, 5.0 %; 80.0 %: ticket cheaper, 12.0 %." in line
    assert "up to" not in line
    one_seed = headline([_level(50, 30.0, None, 1, 1)], 10.0, "val_robust")
    assert "is ahead at no level of val_robust: one seed has no interval" in one_seed
    partial = headline([_level(50, 30.0, 25.0, 2, 3)], 10.0, "val_robust")
    assert "at no level" in partial and "30.0 % (2 of 3 seeds)" in partial  # k of n seeds is no finding
    none = headline([_level(50, -20.0, -30.0, text="dense cheaper")], 10.0, "val_robust")
    assert none.startswith("The ticket is at least 10 % cheaper than dense at no level of val_robust read")
    fell = headline(levels[:1], 10.0, "val_robust", collapsed={"ticket": "0 of 3 seeds", "narrow": "1 of 3 seeds"})
    assert fell.endswith("Collapsed (one class predicted): narrow 1 of 3 seeds.")


TINY = ["experiment=frontier", "frontier.budgets=[1,2]", "frontier.lrs=[0.2]", "frontier.seeds=[0,1]",
        "pipeline.find.epochs=1", "trainer.limit_train_batches=3", "attack.steps=2", "eval.val_robust_samples=64",
        "data.test_subset=64"]


def test_frontier_end_to_end_and_a_rerun_trains_nothing(make_cfg, tmp_path):
    result = run_frontier(make_cfg(*TINY))
    assert len(result.runs) == 2 * 2 * 1 * 2  # seeds × budgets × LRs × arms
    cache = tmp_path / "cache"
    assert len(list(cache.glob("find-*/result.json"))) == 2  # found once per seed
    for run in result.runs:
        finding = next(r for r in result.runs if r.seed == run.seed and r.arm == "ticket").find_passes
        assert run.find_passes == (finding if run.arm == "ticket" else 0.0)  # charged to every ticket point
        assert run.points and run.points[0].passes > run.find_passes
        assert len(run.points) == run.budget
    assert {r.arm for r in result.rows} == {"ticket", "dense"} and all(r.lr == 0.2 for r in result.rows)
    assert result.levels and result.headline.startswith(headline(result.levels, 10.0, "val_robust"))
    assert read_json(FrontierResult, tmp_path / "frontier.json") == result
    md = (tmp_path / "frontier.md").read_text()
    assert "Cheapest cost to reach each accuracy level" in md and "PGD-10 L∞ ε=0.2" in md
    for run in result.runs:  # every run's best checkpoint exists; ticket runs name their ticket file
        assert Path(run.checkpoint).is_file()
        assert Path(run.ticket).is_file() if run.arm == "ticket" else run.ticket is None
    assert "task=eval ckpt_path=" in md
    assert_png(tmp_path / "frontier.png")
    for lv in result.levels:  # each level's row carries the verdict the fronts give
        assert f"| {lv.level:.2f} |" in md and lv.verdict in md
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*/result.json")}
    assert len(stamps) == 2 + 8
    again = run_frontier(make_cfg(*TINY, f"run_dir={tmp_path / 'again'}"))
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*/result.json")} == stamps  # nothing retrained
    assert again.levels == result.levels
    assert all(r.reused for r in again.runs) and not any(r.reused for r in result.runs)
    assert f"{len(again.runs)} of {len(again.runs)} runs came from the stage cache this time" in (
        tmp_path / "frontier.md").read_text()  # the fixture roots every run at tmp_path: the rerun's report


def test_a_ramp_is_checked_against_the_full_schedule_and_compressed_with_it(make_cfg):
    """A 5-of-10-epoch ramp is fine for a 2-epoch budget: it becomes a 1-epoch ramp there."""
    from lth_lightning.config import with_overrides

    cfg = make_cfg("experiment=frontier", "frontier.budgets=[2]", "pipeline.dense_epochs=10",
                   "++frontier.baselines={dense_ramp:['attack.eps_warmup_epochs=5']}")
    run = budget_config(with_overrides(cfg, ["attack.eps_warmup_epochs=5"], "x"), 0, 2, 0.1)
    assert run.attack.eps_warmup_epochs == pytest.approx(1.0) and run.frontier.baselines == {}


def test_more_checks_per_epoch_give_finer_points_at_no_training_cost(make_cfg, tmp_path):
    """eval.checks_per_epoch=2: two points an epoch, the first at half the epoch's passes; validation is not charged
    (training seconds and passes grow only with training), and the stage is another stage than one check's."""
    from lth_lightning.data import build_datamodule
    from lth_lightning.stages.arms import arm_stage, train_arm

    common = ["experiment=fast_ticket", "trainer.limit_train_batches=4", "attack.steps=1", "eval.val_robust_samples=16"]
    one, two = make_cfg(*common), make_cfg(*common, "eval.checks_per_epoch=2")
    assert arm_stage(one, "dense", None).identity != arm_stage(two, "dense", None).identity
    cfg = dataclasses.replace(two, pipeline=dataclasses.replace(two.pipeline, dense_epochs=2))
    result = train_arm(cfg, build_datamodule(cfg.data), "dense", "dense")
    passes = [h.passes for h in result.history]
    assert [h.epoch for h in result.history] == [1, 1, 2, 2]
    assert passes == [passes[0] * k for k in (1, 2, 3, 4)]  # 2 of the epoch's 4 batches between checks
    seconds = [h.train_seconds for h in result.history]
    assert all(b > a for a, b in itertools.pairwise(seconds))
    assert len(run_points(result, "val_robust", None)) == 4
