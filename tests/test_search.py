"""``task=search`` (#32): a tiny study on digits that is killed and resumed, its report and confirmation, the front
pruner, and the recipe -> config mapping."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lth_lightning.config import Recipe
from lth_lightning.data import build_datamodule
from lth_lightning.results import FrontPoint, SearchResult, StageResult, read_json
from lth_lightning.tasks import search as search_task
from tests.conftest import assert_png

TINY = ["experiment=search", "search.trials=3", "search.startup_trials=2", "search.confirm=1",
        "search.confirm_seeds=[1,2]", "search.space.budget=[1]", "search.space.attack=[pgd,fgsm_rs]",
        "search.space.steps=[2]", "frontier.budgets=[1]", "frontier.lrs=[0.2]", "pipeline.find.epochs=1",
        "trainer.limit_train_batches=3", "trainer.limit_val_batches=1", "data.test_subset=32",
        "frontier.final_samples=16", "frontier.final_steps=5", "eval.val_robust_samples=32"]


def _states(db: str) -> list[str]:
    with sqlite3.connect(db) as con:
        return [s for (s,) in con.execute("select state from trials order by number")]


def test_a_killed_search_resumes_and_confirms_its_front(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg(*TINY, "search.trials=4", "search.startup_trials=10")  # every draw random: a replay would show
    real, calls = search_task.train_recipe, []

    def killed_at_the_third_trial(*args, **kwargs):
        calls.append(args[5] if len(args) > 5 else kwargs.get("arm"))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies mid-trial
        return real(*args, **kwargs)

    monkeypatch.setattr(search_task, "train_recipe", killed_at_the_third_trial)
    with pytest.raises(KeyboardInterrupt):
        search_task.run_search(cfg)
    db = str(search_task.study_path(cfg))
    assert _states(db) == ["COMPLETE", "COMPLETE", "RUNNING"]
    with sqlite3.connect(db) as con:
        killed = dict(con.execute("select param_name, param_value from trial_params where trial_id = 3"))
    monkeypatch.setattr(search_task, "train_recipe", real)

    result = search_task.run_search(cfg)
    assert _states(db) == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]  # the killed trial, drawn again
    with sqlite3.connect(db) as con:
        params = [dict(con.execute("select param_name, param_value from trial_params where trial_id = ?", (i,)))
                  for i in range(1, 6)]
    assert params[3] == killed and params[4] != params[0]  # then a fresh draw, not the first one replayed
    assert [t.number for t in result.trials] == [0, 1, 3, 4] and all(t.state == "complete" for t in result.trials)
    # the front is over every point of every trial: no trial point lies above it at its cost
    for t in result.trials:
        for p in t.run.points:
            if not t.run.collapsed:
                assert max(f.accuracy for f in result.front if f.macs <= p.macs) >= p.accuracy
    # confirmation: the standard recipe, FGSM-RS and the chosen recipe, on both fresh seeds, judged per level
    (chosen,) = result.confirmed
    assert {(r.arm, r.seed) for r in result.runs} >= {(a, s) for a in ("dense", "dense_fgsm_rs", chosen.arm)
                                                      for s in (1, 2)}
    assert result.vs_standard and all(chosen.arm in lv.judged for lv in result.vs_standard)
    assert result.vs_best[0].baseline == "best_baseline"
    assert {f.arm for f in result.finals} >= {"dense", chosen.arm}
    stored = read_json(SearchResult, tmp_path / "search.json")
    assert stored.headline == result.headline and stored.confirmed == result.confirmed
    markdown = (tmp_path / "search.md").read_text()
    assert result.headline in markdown and result.ticket_line in markdown and "Pareto front" in markdown
    assert_png(tmp_path / "search.png")

    trained = {p.name for p in (tmp_path / "cache").iterdir()}
    assert search_task.run_search(cfg).headline == result.headline  # a rerun reads the study: nothing trains
    assert {p.name for p in (tmp_path / "cache").iterdir()} == trained


def test_the_front_pruner_stops_a_beaten_trial_and_leaves_its_stage_resumable(make_cfg):
    cfg = make_cfg(*TINY, "trainer.limit_train_batches=4", "eval.checks_per_epoch=2")
    dm = build_datamodule(cfg.data)
    recipe = Recipe(1.0, "pgd", 2, 1.0, 0.0, "sgd_multistep", 0.1, 1)
    beaten = search_task.FrontPruner([FrontPoint(0.0, 0.0, 100.0, 0.0)], "val_robust", 0.5, 0.0)
    with pytest.raises(search_task.TrialStopped, match=r"front reaches 100\.0 %"):
        search_task.train_recipe(cfg, dm, recipe, 0, "val_robust", "t", callbacks=(beaten,))
    (stage,) = list(Path(cfg.pipeline.cache_dir).iterdir())
    assert not (stage / "result.json").exists() and (stage / "checkpoints" / "last.ckpt").exists()
    assert len(beaten.module.history) == 1  # stopped after the first of its two checks
    unbeaten = search_task.FrontPruner([FrontPoint(0.0, 0.0, 0.0, 0.0)], "val_robust", 0.5, 0.0)
    run = search_task.train_recipe(cfg, dm, recipe, 0, "val_robust", "t", callbacks=(unbeaten,))
    assert len(run.points) == 2 and (stage / "result.json").exists()  # resumed at its second check


def test_a_recipe_sets_what_its_label_says(make_cfg):
    cfg = make_cfg(*TINY, "search.space.reset=[init,rewind]")
    recipe = Recipe(0.5, "fgsm_rs", 3, 0.5, 0.5, "adam_cyclic", 0.003, 2, "channel", 0.5, "rewind")
    run = search_task.recipe_config(cfg, recipe, 7)
    assert run.seed == 7 and run.model.width == 0.5 and run.pipeline.dense_epochs == 2
    assert (run.attack.name, run.attack.switch_at, run.attack.steps) == ("fgsm_rs", 0.5, 3)
    assert run.attack.step == pytest.approx(1.25 * cfg.attack.eps)  # FGSM-RS's own step before the switch
    assert run.attack.after_switch().step == pytest.approx(2.5 * cfg.attack.eps / 3)  # PGD-3's after it
    assert run.attack.eps_warmup_epochs == pytest.approx(1.0)  # half of the 2-epoch budget
    assert (run.optim.name, run.optim.schedule, run.optim.lr) == ("adam", "cyclic", 0.003)
    assert (run.prune.name, run.prune.structure, run.prune.ratio, run.prune.reset) == ("oneshot", "channel", 0.5,
                                                                                      "rewind")
    assert recipe.label() == "w0.5 fgsm_rs>pgd3@0.5 ramp0.5 adam_cyclic lr0.003 2ep ticket=channel0.5/rewind"
    json.dumps(recipe.overrides(cfg.attack.eps))  # plain strings, as a frontier variant's


def test_a_hand_over_to_pgd_is_a_stage_of_its_own_and_no_hand_over_changes_nothing(make_cfg):
    from lth_lightning.stages.arms import arm_stage

    def dense(*overrides: str) -> str:
        cfg = make_cfg("experiment=fast_ticket", "attack.name=fgsm_rs", "attack.step_size=null", *overrides)
        return arm_stage(cfg, "dense", None).identity

    assert dense("attack.switch_at=1.0") == dense()  # the default: every stage cached before the field stays
    assert dense("attack.switch_at=0.5") != dense()
    assert dense("attack.switch_at=0.5", "attack.steps=3") != dense("attack.switch_at=0.5")  # PGD's steps now count
    assert dense("attack.steps=3") == dense()  # ... and without a hand-over they are not read


def test_pruned_trials_keep_their_points_and_are_told_pruned(make_cfg, monkeypatch):
    """Every trial meets a front that beats it (100 % for nothing) at its first of two checks: it stops there, is told
    PRUNED, and its point up to then (the finding charged for a ticket) still counts."""

    class Beaten(search_task.FrontPruner):
        def __init__(self, front, *args):
            super().__init__([FrontPoint(0.0, 0.0, 100.0, 0.0)], *args)

    monkeypatch.setattr(search_task, "FrontPruner", Beaten)
    cfg = make_cfg(*TINY, "search.confirm=0", "eval.checks_per_epoch=2", "trainer.limit_train_batches=4",
                   "search.space.ticket=[unstructured]")
    result = search_task.run_search(cfg)
    assert _states(str(search_task.study_path(cfg))) == ["PRUNED"] * 3
    finds = [read_json(StageResult, p) for p in Path(cfg.pipeline.cache_dir).glob("find-*/result.json")]
    cheapest_find = min(f.ledger.passes * f.macs for f in finds)
    for t in result.trials:
        assert t.state == "pruned" and "front reaches 100.0 %" in t.stopped and len(t.run.points) == 1
        assert t.run.points[0].macs > cheapest_find  # charged: the finding's MACs come first ...
        assert t.run.find_passes > 0 and t.run.points[0].passes > t.run.find_passes  # ... and its passes
    assert bool(result.front) == any(not t.run.collapsed for t in result.trials) and not result.confirmed


def test_task_search_alone_runs_the_digits_search():
    from lth_lightning.cli import normalize_argv

    assert normalize_argv(["task=search"]) == ["experiment=search", "task=search"]
    assert normalize_argv(["task=search", "hydra.run.dir=x"]) == ["experiment=search", "task=search", "hydra.run.dir=x"]
    assert normalize_argv(["task=search", "data=mnist"]) == ["task=search", "data=mnist"]  # refused: check_search_...
    assert normalize_argv(["+experiment=search_mnist", "task=search"]) == ["experiment=search_mnist", "task=search"]


def _cli_search(tmp_path, *extra: str, wait: bool = True):
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "lth_lightning", *TINY, f"pipeline.cache_dir={tmp_path / 'cache'}",
           f"hydra.run.dir={tmp_path / 'run'}", "eval.autoattack=off", *extra]
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # two processes of a search, the first killed with SIGKILL (~40 s): .ci/run runs it
def test_a_search_killed_by_sigkill_resumes_from_its_study_file(tmp_path):
    import time

    proc = _cli_search(tmp_path, "search.trials=4", wait=False)
    db, ended = None, 0
    for _ in range(1200):  # until one trial has ended: then kill the process outright
        time.sleep(0.2)
        assert proc.poll() is None, "the search ended before it could be killed"
        found = list((tmp_path / "cache" / "search").glob("study-*.db")) if (tmp_path / "cache").exists() else []
        try:
            ended = sum(s in ("COMPLETE", "PRUNED") for s in _states(str(found[0]))) if found else 0
        except sqlite3.OperationalError:  # the study is being created or written: look again
            continue
        if ended:
            db = str(found[0])
            break
    proc.kill()
    assert proc.wait() != 0 and db is not None and ended < 4  # killed mid-search
    out = _cli_search(tmp_path, "search.trials=4")
    assert out.returncode == 0, out.stderr[-2000:]
    states = _states(db)
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 4 and "RUNNING" not in states
    assert (tmp_path / "run" / "search.md").exists() and "[search] trial" in out.stdout


@pytest.mark.slow  # a W&B-logged search in a subprocess: .ci/run runs it
def test_a_search_logs_each_trial_and_its_pareto_table_to_wandb(tmp_path):
    out = _cli_search(tmp_path, "search.trials=2", "search.confirm=0", "logger=wandb", "logger.group=search-test")
    assert out.returncode == 0, out.stderr[-2000:]
    runs = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) >= 3  # a run per trial's stage (and findings), then the search's own
    media = [m for r in runs for m in r.glob("files/media/table/search/*.table.json")]
    assert len(media) == 1  # the Pareto table
    assert all(b"search-test" in next(r.glob("run-*.wandb")).read_bytes() for r in runs)


def test_a_recipe_without_a_hand_over_has_none_whatever_the_base_had(make_cfg):
    cfg = make_cfg("experiment=search", "attack.name=fgsm_rs", "attack.step_size=0.05", "attack.switch_at=0.5")
    run = search_task.recipe_config(cfg, Recipe(1.0, "fgsm_rs", 3, 1.0, 0.0, "sgd_multistep", 0.1, 1), 1)
    assert run.attack.switch_at == 1.0 and run.attack.step_size is None  # "fgsm_rs" means FGSM-RS throughout


def test_what_a_search_would_find_out_late_is_refused_first(make_cfg):
    from lth_lightning.errors import ConfigError
    from lth_lightning.stages.arms import check

    late = make_cfg("experiment=search", "search.space.reset=[init,rewind]", "prune.rewind_epoch=9")
    with pytest.raises(ConfigError, match=r"search.space.reset holds rewind, to prune.rewind_epoch=9"):
        check(late)
