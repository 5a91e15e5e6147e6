"""``task=frontier``: what a boosting ticket saves at each accuracy level, against a fairly scheduled dense net.

For every seed the ticket is found once (fast_ticket's finding stage; its cost is charged to every ticket
point). Then every arm trains from the same θ0 at every budget in ``frontier.budgets`` on a *complete*
schedule compressed to that budget (warmup and decay milestones scale with it) and at every peak LR of
``frontier.lrs`` (the same grid for every arm, so no saving comes from a badly tuned baseline). Each run is
a cached stage: a rerun of the same frontier trains nothing.

How fronts are read and what a verdict means: ``reports/fronts.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lth_lightning.attacks import threat_model
from lth_lightning.config import CONTROLS, Config, with_overrides
from lth_lightning.data import ImageDataModule, build_datamodule
from lth_lightning.reports.frontier import publish_frontier
from lth_lightning.reports.fronts import budget_rows, collapsed_runs, headlines, level_costs, run_points
from lth_lightning.results import BudgetRun, FinalEval, FrontierResult, StageResult, describe_cut
from lth_lightning.stages.arms import check, find_ticket, train_arm
from lth_lightning.stages.identity import Stage
from lth_lightning.stages.runner import is_rank_zero
from lth_lightning.tasks.evaluate import strong_eval


def budget_config(cfg: Config, seed: int, budget: int, lr: float) -> Config:
    """The run's config: the full schedule compressed to ``budget`` epochs at peak LR ``lr``.

    Milestones are fractions of training already; the LR warmup and the ε ramp keep their share of the full
    dense schedule."""
    share = budget / cfg.pipeline.dense_epochs
    optim = dataclasses.replace(cfg.optim, lr=lr, warmup_epochs=cfg.optim.warmup_epochs * share)
    attack = dataclasses.replace(cfg.attack, eps_warmup_epochs=cfg.attack.eps_warmup_epochs * share)
    pipeline = dataclasses.replace(cfg.pipeline, ticket_epochs=budget, dense_epochs=budget)
    one_run = dataclasses.replace(cfg.frontier, baselines={}, ticket_variants={}, arm_lrs={})  # applied already
    return dataclasses.replace(cfg, seed=seed, optim=optim, attack=attack, pipeline=pipeline, frontier=one_run)


def ticket_arms(cfg: Config) -> dict[str, str]:
    """Ticket arm name -> its structure: ``ticket`` is ``prune.structure``; ``frontier.structures`` adds
    ``ticket_<structure>`` arms found from the same θ0 and seed."""
    own = cfg.prune.structure
    return {"ticket": own, **{f"ticket_{s}": s for s in cfg.frontier.structures if s != own}}


@dataclasses.dataclass(frozen=True)
class ArmSpec:
    """How an arm trains: its stage kind, the ticket arm whose finding it consumes, its config overrides."""

    kind: str  # ticket | dense | reinit | a control (CONTROLS)
    ticket: str | None  # the ticket arm (structure) it is built from; None for dense arms
    overrides: tuple[str, ...] = ()

    @property
    def charged(self) -> bool:
        """Whether the arm pays for the finding: tickets and the re-init of their mask do; a control needs none."""
        return self.ticket is not None and self.kind not in CONTROLS


def arm_specs(cfg: Config) -> dict[str, ArmSpec]:
    """Every arm in report order: tickets (structures, then variants), dense and its baseline variants, reinit,
    the controls (each of the ticket arm of its structure)."""
    fc, specs = cfg.frontier, {}
    of_structure = {s: name for name, s in reversed(ticket_arms(cfg).items())}
    for arm in fc.arms:
        if arm == "ticket":
            specs |= {name: ArmSpec("ticket", name) for name in ticket_arms(cfg)}
            specs |= {name: ArmSpec("ticket", "ticket", tuple(ov)) for name, ov in fc.ticket_variants.items()}
        elif arm == "dense":
            specs |= {"dense": ArmSpec("dense", None)}
            specs |= {name: ArmSpec("dense", None, tuple(ov)) for name, ov in fc.baselines.items()}
        elif arm == "reinit":
            specs["reinit"] = ArmSpec("reinit", "ticket")
        else:
            specs[arm] = ArmSpec(arm, of_structure[CONTROLS[arm]])
    return specs


def arm_names(cfg: Config) -> list[str]:
    return list(arm_specs(cfg))


def _find(cfg: Config, dm: ImageDataModule, seed: int, structure: str) -> tuple[Stage, StageResult]:
    prune = dataclasses.replace(cfg.prune, structure=structure)
    return find_ticket(dataclasses.replace(cfg, seed=seed, prune=prune), dm, cfg.pipeline.find.lr)


def train_runs(cfg: Config, dm: ImageDataModule, metric: str,
                cuts: dict[str, list[dict[str, float]]]) -> list[BudgetRun]:
    """Every run of every arm; ``cuts`` collects each ticket arm's achieved prune per seed."""
    fc, runs, specs = cfg.frontier, [], arm_specs(cfg)
    consumed = {spec.ticket for spec in specs.values() if spec.ticket}
    variants = {arm: with_overrides(cfg, list(spec.overrides), arm) for arm, spec in specs.items()}
    for seed in fc.seeds:
        tickets = {a: _find(cfg, dm, seed, s) for a, s in ticket_arms(cfg).items() if a in consumed}
        for arm, (_, found) in tickets.items():
            cuts.setdefault(arm, []).append(found.cut)
        for budget in fc.budgets:
            for lr in sorted({lr for arm in specs for lr in fc.lrs_of(arm)}):
                for arm, spec in ((a, s) for a, s in specs.items() if lr in fc.lrs_of(a)):
                    finding = tickets[spec.ticket] if spec.ticket else None
                    result = train_arm(budget_config(variants[arm], seed, budget, lr), dm, spec.kind,
                                       f"{arm}@b{budget}-lr{lr:g}-s{seed}", finding)
                    runs.append(budget_run(arm, seed, budget, lr, result, finding[1] if finding else None, metric,
                                            spec.charged))
    return runs


def budget_run(arm: str, seed: int, budget: int, lr: float, result: StageResult, find: StageResult | None,
                metric: str, charged: bool) -> BudgetRun:
    """One run as the fronts read it; ``charged``: its points include the finding's cost."""
    test, paid = result.test, find if charged else None
    return BudgetRun(arm, seed, budget, lr, paid.ledger.passes if paid else 0.0,
                     paid.ledger.train_seconds if paid else 0.0, result.best(metric),
                     test.robust if test else None, test.clean if test else None, run_points(result, metric, paid),
                     find.history[-1].epoch if find and find.history else None,
                     Path(find.ticket).parent.name if find and find.ticket else None, result.collapsed,
                     result.best_checkpoint or None, find.ticket if find else None, result.reused)


def controls_of(cfg: Config) -> dict[str, list[str]]:
    """Ticket arm -> the control arms built from its finding (reinit and the CONTROLS)."""
    out: dict[str, list[str]] = {}
    for arm, spec in arm_specs(cfg).items():
        if spec.kind == "reinit" or spec.kind in CONTROLS:
            out.setdefault(spec.ticket, []).append(arm)  # type: ignore[arg-type]
    return out


def _cuts(cfg: Config, cuts: dict[str, list[dict[str, float]]]) -> dict[str, str]:
    """Each ticket arm's achieved prune over the seeds, beside the cut its structure asked for."""
    structures = ticket_arms(cfg)
    return {a: describe_cut(c, dataclasses.replace(cfg.prune, structure=structures[a]).cut) for a, c in cuts.items()}


def final_evals(cfg: Config, dm: ImageDataModule, runs: list[BudgetRun],
                arms: list[str] | None = None) -> list[FinalEval]:
    """Each arm's best run per seed (by validation, collapsed runs last), its best checkpoint under the strong attack
    (``frontier.final_steps`` × ``final_restarts`` on the first ``final_samples`` test images). ``arms``: the
    frontier's own unless given (the search's confirmation names its recipes)."""
    fc = cfg.frontier
    if fc.final_steps == 0 or not cfg.eval.robust_for(cfg.attack):
        return []
    dm.setup("test")
    test = dm.test_set
    n = min(fc.final_samples, len(test))
    images, labels = test.images[:n].float().div(255.0), test.labels[:n]
    out = []
    for arm in arms if arms is not None else arm_names(cfg):
        for seed in fc.seeds:
            mine = [r for r in runs if (r.arm, r.seed) == (arm, seed) and r.checkpoint]
            if not mine:
                continue
            best = max(mine, key=lambda r: (not r.collapsed, r.best_val if r.best_val is not None else -1.0))
            clean, strong, threat = strong_eval(best.checkpoint, images, labels, fc.final_steps, fc.final_restarts)
            out.append(FinalEval(arm, seed, best.budget, best.lr, best.checkpoint, n, clean, strong, threat,
                                 best.test_robust))
    return out


def run_frontier(cfg: Config) -> FrontierResult:
    check(cfg)
    metric = cfg.target_metric()
    dm = build_datamodule(cfg.data)
    cuts: dict[str, list[dict[str, float]]] = {}
    runs = train_runs(cfg, dm, metric, cuts)
    arms, fc, controls = arm_names(cfg), cfg.frontier, controls_of(cfg)
    levels = level_costs(runs, arms, fc, controls)
    collapsed = collapsed_runs(runs, arms)
    threat = threat_model(cfg.eval, cfg.attack)  # the threat model every robust number carries
    result = FrontierResult(metric, threat.label() if threat else "not measured", list(fc.budgets), list(fc.lrs),
                            list(fc.seeds), budget_rows(runs, arms, fc), levels,
                            headlines(levels, arms, fc.saving_threshold, metric, collapsed), runs, fc.confidence,
                            controls, _cuts(cfg, cuts), collapsed, final_evals(cfg, dm, runs))
    if is_rank_zero():
        publish_frontier(cfg, result, Path(cfg.run_dir))
    return result
