"""``task=search``: the cheapest way to each robust level, searched for and then confirmed on fresh seeds.

A multi-objective Optuna study draws *recipes* from ``search.space`` (width, training attack and an optional hand-over
to PGD, ε ramp, optimiser and schedule, peak LR, budget, a ticket or none) and trains each on the search's seed as a
cached stage, like a frontier run: validation robust accuracy up, training MACs (the finding included) down. Every
validation check of every trial is a point, so the study's Pareto front is over points, not only trial ends. A trial
the front already beats at its cost by ``search.prune_margin`` points, once ``search.prune_after`` of it has run, is
stopped (our pruner: Optuna's are single-objective); its stage is left unfinished, so it resumes if drawn again.

The study lives in an SQLite file whose name is derived from the search (``search.storage`` null): the same command
resumes where a killed one stopped, and the trial that was running is drawn again first (its stage resumes from its
last checkpoint). Selection uses validation only. The confirmation re-runs the cheapest front recipe to each level
(``search.confirm`` of them) on ``search.confirm_seeds`` beside the standard recipe (``dense``: the base config, at
``frontier.budgets`` x ``frontier.lrs``) and the hand-written ``frontier.baselines``, and judges each by the
frontier's rules (``reports/fronts.py``); a recipe with a ticket also trains its controls. Reported numbers are test
accuracy at the best checkpoint and the strong final evaluation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import lightning as L

from lth_lightning.attacks import threat_model
from lth_lightning.config import CONTROLS, FAST_ATTACKS, OPTIMIZERS, Config, Recipe, with_overrides
from lth_lightning.data import ImageDataModule, build_datamodule
from lth_lightning.errors import first_line
from lth_lightning.reports.fronts import LEVEL_FRACTIONS, collapsed_runs, envelope, level_costs, mean_top
from lth_lightning.reports.search import publish_search, search_headline, ticket_line
from lth_lightning.results import (
    BudgetRun,
    Confirmed,
    FrontPoint,
    SearchPoint,
    SearchResult,
    SearchTrial,
    StageResult,
    to_json,
)
from lth_lightning.stages.arms import check, find_ticket, train_arm
from lth_lightning.stages.identity import Stage, cpu_threads, identity_view
from lth_lightning.stages.runner import is_rank_zero
from lth_lightning.tasks.frontier import arm_names, budget_config, budget_run, final_evals, train_runs


class TrialStopped(Exception):
    """Raised by ``FrontPruner`` inside a fit: the stage stays unfinished (resumable), the trial is pruned."""


# -- the recipe of a trial -------------------------------------------------------------------------------------------
def sample(trial: Any, cfg: Config) -> Recipe:
    """Draw a recipe (define-by-run: a parameter is drawn only where it matters, so ``steps`` only for an iterative
    attack or a hand-over to PGD, ``ratio`` and ``reset`` only with a ticket)."""
    sp = cfg.search.space
    attack = trial.suggest_categorical("attack", sp.attack)
    fast = attack in FAST_ATTACKS
    switch = trial.suggest_categorical("switch", sp.switch) if fast else 1.0
    steps = trial.suggest_categorical("steps", sp.steps) if not fast or switch < 1 else 1
    optimizer = trial.suggest_categorical("optimizer", sp.optimizer)
    family = OPTIMIZERS[optimizer][0]
    low, high = sp.lr[family]
    lr = trial.suggest_float(f"lr_{family}", low, high, log=True) if low < high else low
    ticket = trial.suggest_categorical("ticket", sp.ticket)
    ratio = trial.suggest_categorical("ratio", sp.ratio) if ticket != "none" else 0.0
    reset = trial.suggest_categorical("reset", sp.reset) if ticket != "none" else "init"
    return Recipe(trial.suggest_categorical("width", sp.width), attack, steps, switch,
                  trial.suggest_categorical("ramp", sp.ramp), optimizer, lr,
                  trial.suggest_categorical("budget", sp.budget), ticket, ratio, reset)


def recipe_config(cfg: Config, recipe: Recipe, seed: int) -> Config:
    """The run's config: the base with the recipe's settings, its schedule compressed to its budget (as a frontier
    run's), its ε ramp over ``ramp`` of that budget, and its ticket's one-shot prune."""
    base = with_overrides(cfg, recipe.overrides(cfg.attack.eps), f"search recipe {recipe.label()}")
    out = budget_config(base, seed, recipe.budget, recipe.lr)
    attack = dataclasses.replace(out.attack, eps_warmup_epochs=recipe.ramp * recipe.budget)
    if recipe.ticket == "none":
        return dataclasses.replace(out, attack=attack)
    prune = dataclasses.replace(cfg.prune, name="oneshot", structure=recipe.ticket, ratio=recipe.ratio,
                                channel_ratio=None, reset=recipe.reset)
    return dataclasses.replace(out, attack=attack, prune=prune)


def find_recipe(cfg: Config, dm: ImageDataModule, recipe: Recipe, seed: int) -> tuple[Stage, StageResult]:
    """A ticket recipe's finding, as every ticket's: the base's cheap finding (its optimiser, FGSM at
    ``pipeline.find.lr``) on the recipe's net, pruned as the recipe says (a cached stage)."""
    run_cfg = recipe_config(cfg, recipe, seed)
    find_cfg = dataclasses.replace(cfg, seed=seed, model=run_cfg.model, prune=run_cfg.prune)
    return find_ticket(find_cfg, dm, cfg.pipeline.find.lr)


def train_recipe(cfg: Config, dm: ImageDataModule, recipe: Recipe, seed: int, metric: str, arm: str,
                 kind: str | None = None, callbacks: tuple[L.Callback, ...] = (),
                 finding: tuple[Stage, StageResult] | None = None) -> BudgetRun:
    """One run of a recipe (``kind``: ticket or dense by the recipe, or a control of its ticket). A ticket's finding
    (``find_recipe``, unless the caller has it already) is charged to the ticket and its re-init."""
    run_cfg = recipe_config(cfg, recipe, seed)
    kind = kind or ("dense" if recipe.ticket == "none" else "ticket")
    if kind != "dense" and finding is None:
        finding = find_recipe(cfg, dm, recipe, seed)
    result = train_arm(run_cfg, dm, kind, f"{arm}-s{seed}", finding if kind != "dense" else None, callbacks)
    charged = kind in ("ticket", "reinit")
    return budget_run(arm, seed, recipe.budget, recipe.lr, result, finding[1] if finding else None, metric, charged)


# -- the pruner ------------------------------------------------------------------------------------------------------
class FrontPruner(L.Callback):
    """Stops a trial the study's front already beats: at a validation check after ``after`` of the run, if some front
    point no dearer than the trial's cost so far is ``margin`` points more accurate than the trial's best. The stop
    comes at the next training batch (after the check's checkpoint is saved), as ``TrialStopped``."""

    def __init__(self, front: list[FrontPoint], metric: str, after: float, margin: float,
                 find: StageResult | None = None) -> None:
        self.front, self.metric, self.after, self.margin = front, metric, after, margin
        self.find = find  # a ticket recipe's finding: its cost comes first; None for a dense recipe
        self.why: str | None = None
        self.module: Any = None

    @property
    def offset(self) -> float:
        """The finding's MACs, charged before the trial's first step."""
        return self.find.ledger.passes * (self.find.macs or 0) if self.find is not None else 0.0

    def on_validation_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.module = pl_module
        values = [v for h in pl_module.history if (v := h.metric(self.metric)) is not None]
        if not values or not self.front or trainer.sanity_checking:
            return
        done = trainer.global_step / max(1.0, pl_module._steps_per_epoch * trainer.max_epochs)
        cost = self.offset + pl_module.history[-1].passes * pl_module.macs
        beaten = max((p.accuracy for p in self.front if p.macs is not None and p.macs <= cost), default=None)
        if done >= self.after and beaten is not None and beaten >= max(values) + self.margin:
            self.why = (f"at {done:.0%} of its run the front reaches {beaten:.1f} % for no more than its {cost:.3g} "
                        f"MACs; its best is {max(values):.1f} %")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.why is not None:
            raise TrialStopped(self.why)


# -- the study -------------------------------------------------------------------------------------------------------
def study_path(cfg: Config) -> Path:
    """The study's SQLite file: ``search.storage``, else named by everything the trials depend on (the base config's
    identity, the space, the sampler and its seed), so rerunning the same search resumes it and another starts anew."""
    if cfg.search.storage:
        return Path(cfg.search.storage)
    sc = cfg.search
    blob = json.dumps({"base": identity_view(cfg), "space": to_json(sc.space), "metric": cfg.target_metric(),
                       "threads": cpu_threads(cfg), "sampler": [sc.sampler, sc.startup_trials, sc.sampler_seed],
                       "seed": cfg.seed, "prune": [sc.prune, sc.prune_after, sc.prune_margin]},
                      sort_keys=True, default=str)
    return Path(cfg.pipeline.cache_dir) / "search" / f"study-{hashlib.sha256(blob.encode()).hexdigest()[:12]}.db"


def open_study(cfg: Config) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sc, path = cfg.search, study_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=f"sqlite:///{path.resolve()}", study_name="search", load_if_exists=True,
                                directions=["maximize", "minimize"])
    # seeded by the trials already there: a resumed study goes on drawing, instead of replaying its first draws (the
    # first MNIST search, resumed after a crash, drew its first two recipes again)
    seed = sc.sampler_seed + len(study.trials)
    study.sampler = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=sc.startup_trials),
                     "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
                     "random": lambda: optuna.samplers.RandomSampler(seed=seed)}[sc.sampler]()
    return study


def _ended(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _requeue_killed(study: Any) -> None:
    """A trial left running by a killed search: marked failed, and its parameters drawn again first."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
        print(f"[search] trial {t.number} was running when the search stopped: drawn again (its stage resumes)")


def _points(trials: list[SearchTrial]) -> list[FrontPoint]:
    return [p for t in trials if not t.run.collapsed for p in t.run.points]


def _stored(t: Any) -> SearchTrial:
    from lth_lightning.results import from_json

    return from_json(SearchTrial, t.user_attrs["trial"])


def run_trials(cfg: Config, dm: ImageDataModule, metric: str, study: Any) -> list[SearchTrial]:
    """Ask, train, tell until ``search.trials`` trials have ended; one progress line per trial."""
    from optuna.trial import TrialState

    _requeue_killed(study)
    trials = [_stored(t) for t in _ended(study)]
    sc = cfg.search
    while len(trials) < sc.trials:
        trial = study.ask()
        recipe = sample(trial, cfg)
        front = envelope(_points(trials), "macs")
        pruner = FrontPruner(front, metric, sc.prune_after, sc.prune_margin) if sc.prune else None
        t0 = time.perf_counter()
        try:
            run = _trial_run(cfg, dm, recipe, metric, trial.number, pruner)
            state, why = "complete", None
        except TrialStopped as stop:
            run, state, why = _stopped_run(cfg, recipe, metric, trial.number, pruner), "pruned", str(stop)
        except Exception as err:  # told FAIL with its reason, so a rerun draws another recipe instead of this again
            trial.set_user_attr("error", f"{type(err).__name__}: {first_line(err)}")
            study.tell(trial, state=TrialState.FAIL)
            print(f"[search] trial #{trial.number} {recipe.label()} failed: {first_line(err)}")
            raise
        done = SearchTrial(trial.number, recipe, state, run, why)
        trial.set_user_attr("trial", to_json(done))
        if state == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        else:
            best = max(run.points, key=lambda p: p.accuracy) if run.points else None
            study.tell(trial, [best.accuracy if best else 0.0, best.macs if best else float("inf")])
        trials.append(done)
        print(_progress(done, len(trials), sc.trials, time.perf_counter() - t0, len(envelope(_points(trials), "macs"))))
    return trials


def _trial_run(cfg: Config, dm: ImageDataModule, recipe: Recipe, metric: str, number: int,
               pruner: FrontPruner | None) -> BudgetRun:
    """The trial's run; the pruner learns the finding first (the trial's points are charged its cost)."""
    finding = find_recipe(cfg, dm, recipe, cfg.seed) if recipe.ticket != "none" else None
    if pruner is not None and finding is not None:
        pruner.find = finding[1]
    return train_recipe(cfg, dm, recipe, cfg.seed, metric, f"trial{number}", callbacks=(pruner,) if pruner else (),
                        finding=finding)


def _stopped_run(cfg: Config, recipe: Recipe, metric: str, number: int, pruner: FrontPruner | None) -> BudgetRun:
    """A pruned trial's points up to its stop (the module's history), charged like a finished one."""
    from lth_lightning.reports.fronts import run_points

    module, find = pruner.module, pruner.find  # type: ignore[union-attr]
    partial = StageResult(f"trial{number}", recipe.budget, list(module.history), module.ledger,
                          module.trained_sparsity, macs=module.macs)
    points = run_points(partial, metric, find)  # the finding's passes, seconds and MACs first, as a finished trial's
    return BudgetRun(f"trial{number}", cfg.seed, recipe.budget, recipe.lr, find.ledger.passes if find else 0.0,
                     find.ledger.train_seconds if find else 0.0, partial.best(metric), None, None, points,
                     collapsed=partial.is_collapsed(metric))


def _progress(t: SearchTrial, k: int, n: int, seconds: float, front: int) -> str:
    best = max((p.accuracy for p in t.run.points), default=None)
    cost = t.run.points[-1].macs if t.run.points else None
    what = f"best {best:.1f} %" if best is not None else "nothing measured"
    tail = f"; pruned: {t.stopped}" if t.stopped else ""
    return (f"[search] trial {k}/{n} (#{t.number}) {t.recipe.label()}: {what} for {cost or 0:.3g} MACs "
            f"({seconds:.0f} s{', cached' if t.run.reused else ''}); front {front} points{tail}")


def study_front(trials: list[SearchTrial]) -> list[SearchPoint]:
    """The Pareto front over every point of every trial (collapsed runs left out), cheapest first."""
    tagged = [(t.number, p) for t in trials if not t.run.collapsed for p in t.run.points]
    front = envelope([p for _, p in tagged], "macs")
    owner = {id(p): n for n, p in tagged}
    return [SearchPoint(owner[id(p)], p.macs or 0.0, p.accuracy) for p in front]


def pick_recipes(front: list[SearchPoint], trials: list[SearchTrial], count: int) -> list[Confirmed]:
    """The cheapest front point to each level (fractions of the front's top, and top - 1), highest level first; one
    recipe per trial, at most ``count``."""
    if not front or count == 0:
        return []
    top = front[-1].accuracy
    levels = sorted({round(top - 1.0, 2), *(round(f * top, 2) for f in LEVEL_FRACTIONS)}, reverse=True)
    by_number, out = {t.number: t for t in trials}, []
    for level in levels:
        point = next((p for p in front if p.accuracy >= level), None)
        if point is None or any(c.trial == point.trial for c in out):
            continue
        recipe = by_number[point.trial].recipe
        controls = [] if recipe.ticket == "none" else [
            f"recipe{point.trial}_{c}" for c in ("reinit", *(k for k, s in CONTROLS.items() if s == recipe.ticket))]
        out.append(Confirmed(f"recipe{point.trial}", point.trial, recipe, level, controls))
    return out[:count]


# -- confirmation ----------------------------------------------------------------------------------------------------
def confirm(cfg: Config, dm: ImageDataModule, metric: str,
            chosen: list[Confirmed]) -> tuple[list[BudgetRun], list[str]]:
    """The standard recipe and the hand-written baselines as a frontier trains them, then every chosen recipe (and its
    ticket's controls), each on every confirmation seed."""
    seeds = cfg.search.confirm_seeds
    base = dataclasses.replace(cfg, frontier=dataclasses.replace(cfg.frontier, seeds=seeds, arms=["dense"]))
    runs = train_runs(base, dm, metric, {})
    for c in chosen:
        for seed in seeds:
            finding = find_recipe(cfg, dm, c.recipe, seed) if c.recipe.ticket != "none" else None  # one per seed
            runs.append(train_recipe(cfg, dm, c.recipe, seed, metric, c.arm, finding=finding))
            runs += [train_recipe(cfg, dm, c.recipe, seed, metric, control, kind=control.split("_", 1)[1],
                                  finding=finding) for control in c.controls]
    return runs, arm_names(base)


def levels_of(cfg: Config, runs: list[BudgetRun], arms: list[str], chosen: list[Confirmed],
              seeds: list[int]) -> tuple[Any, Any, float]:
    """The verdict tables: against the standard recipe alone, and against the best of it and the baselines, at
    fractions of the standard recipe's top and its top - 1."""
    top = mean_top(runs, "dense", seeds)
    levels = sorted({round(top - 1.0, 2), *(round(f * top, 2) for f in LEVEL_FRACTIONS)})
    fc = dataclasses.replace(cfg.frontier, seeds=list(seeds), levels=levels)
    mine = [a for c in chosen for a in (c.arm, *c.controls)]
    controls = {c.arm: c.controls for c in chosen if c.controls}
    standard = [r for r in runs if r.arm == "dense" or r.arm in mine]
    return (level_costs(standard, ["dense", *mine], fc, controls),
            level_costs(runs, [*arms, *mine], fc, controls), round(top, 2))


def run_search(cfg: Config) -> SearchResult:
    check(cfg)
    metric = cfg.target_metric()
    dm = build_datamodule(cfg.data)
    study = open_study(cfg)
    trials = run_trials(cfg, dm, metric, study)
    front = study_front(trials)
    chosen = pick_recipes(front, trials, cfg.search.confirm)
    seeds = list(cfg.search.confirm_seeds) if chosen else []
    runs, baselines = confirm(cfg, dm, metric, chosen) if chosen else ([], [])
    vs_standard, vs_best, top = levels_of(cfg, runs, baselines, chosen, seeds) if chosen else ([], [], 0.0)
    arms = [*baselines, *(a for c in chosen for a in (c.arm, *c.controls))]
    finals = final_evals(dataclasses.replace(cfg, frontier=dataclasses.replace(cfg.frontier, seeds=seeds)), dm, runs,
                         arms) if chosen else []
    threat = threat_model(cfg.eval, cfg.attack)
    result = SearchResult(metric, threat.label() if threat else "not measured", str(study_path(cfg)),
                          cfg.search.sampler, trials, front, chosen, seeds, baselines, vs_standard, vs_best, runs,
                          collapsed_runs(runs, arms), finals, "", "", top)
    result.headline, result.ticket_line = search_headline(result), ticket_line(result)
    if is_rank_zero():
        publish_search(cfg, result, Path(cfg.run_dir))
    return result
