"""What a new user types: bad inputs get one ``error:`` line and exit 2 (nothing written is touched), the
tickets subcommand, and exact cost and sample counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lth_lightning import cli
from lth_lightning.data import build_datamodule
from lth_lightning.pruning import Ticket, save_ticket
from lth_lightning.pruning.cli import main as tickets_main
from lth_lightning.stages.runner import build_trainer, make_module


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lth_lightning", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=180)


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("error: ")
    return lines[-1]


def _fill(args: list[str], tmp_path: Path) -> tuple[list[str], dict[str, Path]]:
    afile = tmp_path / "a_file"
    afile.write_text("keep me")
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    fill = {"file": afile, "empty": tmp_path / "empty.pt", "tmp": tmp_path, "bad": tmp_path / "bad.ckpt"}
    args = [a.format(**fill) for a in args]
    if not any(a.startswith("hydra.run.dir") for a in args):
        args.append(f"hydra.run.dir={tmp_path / 'run'}")
    return args, fill


@pytest.mark.parametrize(
    ("args", "expected"),
    [  # refused before Hydra composes anything: checked in-process
        (["model=resnet99"], "error: model='resnet99' is unknown; choose one of lenet, madry_cnn, mlp,"),
        (["-m", "model=lenet,resnet99"], "error: model='resnet99' is unknown"),
        (["+prune.ratoi=0.5"], "error: prune.ratoi is not a setting; did you mean prune.ratio?"),
        (["prune.ratoi=0.5"], "error: prune.ratoi is not a setting; did you mean prune.ratio?"),
        (["hydra.run.dir={file}/run"], "error: hydra.run.dir={file}/run is not a writable folder"),
        (["hydra.run.dir=/proc/lth_run"], "error: hydra.run.dir=/proc/lth_run is not a writable folder"),
        # composed and validated before Hydra writes .hydra/ or a log (#26)
        (["prune.ratio=80%"], "error: Error merging override prune.ratio=80%: Value '80%' of type 'str' could not "
                              "be converted to Float"),
        (["prune.ratio=1.5"], "error: prune.ratio=1.5 must be in [0, 1)"),
        (["attack=pgd", "attack.eps=8"], "attacks work in [0, 1] pixel space (for 8/255 write 0.03137)"),
        (["attack=pgd_l2", "attack.eps=9"], "error: attack.eps=9 is above 8, the largest l2 distance"),  # 8x8 digits
        (["experiment=fast_ticket", "frontier.seeds=[0,1,2]"],
         "error: frontier.seeds is not read by task=fast_ticket: task=fast_ticket reads no frontier.* setting"),
        (["experiment=frontier", "pipeline.ticket_epochs=3"],
         "error: pipeline.ticket_epochs is not read by task=frontier: the frontier trains every arm at each of "
         "frontier.budgets"),
        (["pipeline.arms=[ticket]"], "error: pipeline.arms is not read by task=train"),
        # #31: settings another setting switches off, once silently ignored
        (["prune.ratio=0.5"], "error: prune.ratio is not read by task=train: it is not read with prune=none"),
        (["attack=fgsm", "attack.steps=5"], "error: attack.steps is not read by task=train: it is not read with "
                                            "attack.name=fgsm"),
        (["prune.control=narrow"], "error: prune.control is not read by task=train: task=train trains or evaluates"),
        (["task=eval", "ckpt_path={file}", "attack.eps=0.3"], "error: attack.eps is not read by task=eval: task=eval "
                                                              "attacks at the checkpoint's own threat model"),
        (["optim.milestones=[0.9,0.5]"], "error: optim.milestones=[0.9, 0.5] must be in increasing order"),
        (["experiment=fast_ticket", "prune.reset=rewind", "prune.rewind_epoch=9"],
         "error: prune.rewind_epoch=9 is after the first run ends (pipeline.find.epochs=5)"),
        pytest.param(["trainer=gpu"], "error: trainer.accelerator=gpu but this machine has no CUDA GPU",
                     marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here")),
        (["data=mnist", "data.root={tmp}/nowhere"], "error: mnist not found under {tmp}/nowhere"),
        (["experiment=fast_ticket", "pipeline.cache_dir={file}/cache"],
         "error: pipeline.cache_dir={file}/cache is not a writable folder"),
        (["experiment=fast_ticket", "attack=none", "pipeline.find.attack=none", "pipeline.target_metric=val_robust"],
         "use pipeline.target_metric=val_clean"),
        (["task=eval", "ckpt_path={bad}"], "error: {bad} is not a readable checkpoint"),
        # #32: a bad recipe space, a setting the search never reads, the sweeper that task=search replaced
        (["experiment=search", "search.space.attack=[pgd,foo]"], "error: search.space.attack entry='foo' is unknown"),
        (["experiment=search", "search.space.budget=[]"], "error: search.space.budget is empty"),
        (["experiment=search", "search.space.lr.sgd=[0.3,0.1]"],
         "error: search.space.lr.sgd=[0.3, 0.1] must be [low, high]"),
        (["experiment=search", "search.confirm_seeds=[0,1]"],
         "error: search.confirm_seeds=[0, 1] holds the search's own"),
        (["experiment=search", "pipeline.ticket_epochs=3"], "error: pipeline.ticket_epochs is not read by task=search"),
        (["search.trials=3"], "error: search.trials is not read by task=train"),
        (["-m", "hparams_search=optuna"], "error: hparams_search is gone"),
        (["task=search", "data=mnist"], "error: task=search starts from a search experiment: +experiment=search"),
        (["experiment=search", '+frontier.baselines.dense_bad=["attack.nope=1"]'],
         "error: frontier.baselines.dense_bad: attack.nope is not a setting"),
        (["experiment=search", "trainer.devices=2"], "error: task=search runs its study in one process"),
        (["ticket={empty}"], "is empty (0 bytes): not a ticket"),
        (["task=eval", "ckpt_path={tmp}/none.ckpt"], "error: checkpoint {tmp}/none.ckpt does not exist"),
    ],
)
def test_bad_command_line_is_refused_before_hydra(tmp_path, monkeypatch, capsys, args, expected):
    args, fill = _fill(args, tmp_path)
    monkeypatch.setattr(sys, "argv", ["lth-lightning", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected.format(**fill) in err[0]
    assert fill["file"].read_text() == "keep me"  # nothing already written is touched
    assert not any((tmp_path / "run").glob("*"))  # and nothing written: no .hydra/, no log, no stage.json


@pytest.mark.parametrize(
    ("args", "expected"),
    [  # the real entry point, in a subprocess (in process above: slow tier, ~7 s of start-up each)
        (["ticket={empty}"], "is empty (0 bytes): not a ticket"),
        (["experiment=fast_ticket", "attack=none", "pipeline.find.attack=none", "pipeline.target_metric=val_robust"],
         "use pipeline.target_metric=val_clean"),
    ],
)
@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
    args, fill = _fill(args, tmp_path)
    line = _one_error_line(_cli(*args, cwd=tmp_path))
    assert expected.format(**fill) in line
    assert fill["file"].read_text() == "keep me"


def test_tickets_subcommand_of_the_entry_point(tmp_path, capsys):
    masks = {"net.w": torch.tensor([[True, False], [False, False]])}
    save_ticket(tmp_path / "a.pt", Ticket(masks, {"net.w": torch.ones(2, 2)}, {"model": {"name": "lenet"}}))
    show = _cli("tickets", "show", str(tmp_path / "a.pt"), cwd=tmp_path)  # the console entry point itself
    assert show.returncode == 0 and "net.w" in show.stdout and "sparsity 0.7500" in show.stdout
    assert "Warning" not in show.stderr, show.stderr
    assert tickets_main(["compare", str(tmp_path / "a.pt"), str(tmp_path / "a.pt")]) == 0
    assert "overall" in (out := capsys.readouterr().out) and "1.0000" in out
    (tmp_path / "empty.pt").write_bytes(b"")
    assert tickets_main(["show", str(tmp_path / "empty.pt")]) == 2
    assert "is empty" in capsys.readouterr().err


class Counter:
    """Counts the examples every forward pass of a module sees."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seen = 0
        module.register_forward_pre_hook(self)

    def __call__(self, _module, inputs) -> None:
        self.seen += inputs[0].shape[0]


@pytest.mark.parametrize(("attack", "per_example"),
                         [("none", 1), ("fgsm", 2), ("fgsm_rs", 2), ("pgd", 4), ("pgd_l2", 4), ("trades", 6)])
def test_ledger_counts_every_forward_pass(make_cfg, tmp_path, attack, per_example):
    """Natural 1, FGSM 2, PGD-3 4, TRADES-3 6 (clean target + 3 steps + clean and adversarial update)."""
    cfg = make_cfg(f"attack={attack}", "attack.steps=3", "trainer.limit_train_batches=2", "trainer.limit_val_batches=0",
                   "data.batch_size=16")
    dm = build_datamodule(cfg.data)
    module = make_module(cfg, dm.info)
    counter = Counter(module.model)
    build_trainer(cfg.trainer, tmp_path, 1, [], False).fit(module, datamodule=dm)
    assert module.ledger.passes == counter.seen == 2 * 16 * per_example


class CountingAttack:
    def __init__(self, attack) -> None:
        self.attack, self.seen = attack, 0

    def __call__(self, model, x, y):
        self.seen += len(x)
        return self.attack(model, x, y)

    def __getattr__(self, name):
        return getattr(self.attack, name)


def test_robust_sample_counts_are_exact(make_cfg, tmp_path):
    """100 robust validation samples means 100, not one 512-image batch."""
    cfg = make_cfg("attack=fgsm", "eval.val_robust_samples=100", "data.eval_batch_size=512",
                   "trainer.limit_train_batches=1")
    dm = build_datamodule(cfg.data)
    module = make_module(cfg, dm.info)
    module.eval_attack = CountingAttack(module.eval_attack)
    build_trainer(cfg.trainer, tmp_path, 2, [], False).fit(module, datamodule=dm)
    assert module.eval_attack.seen == 2 * 100
    assert all(h.val_robust is not None for h in module.history)


def test_natural_training_measures_no_robustness_unless_asked(make_cfg, tmp_path):
    cfg = make_cfg("attack=none", "trainer.limit_train_batches=1")
    dm = build_datamodule(cfg.data)
    module = make_module(cfg, dm.info)
    build_trainer(cfg.trainer, tmp_path, 1, [], False).fit(module, datamodule=dm)
    assert module.threat is None and module.history[0].val_robust is None
    asked = make_module(make_cfg("attack=none", "eval.robust=true"), dm.info)
    assert asked.threat is not None and asked.threat.label() == "PGD-10 L∞ ε=8/255"


def test_help_opens_with_the_tasks_experiments_and_tickets_subcommand(tmp_path):
    out = _cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    head = out.stdout.splitlines()[0]
    assert head.startswith("lth_lightning:") and "Hydra" not in head  # ours first, not Hydra's banner
    for needed in ("fast_ticket  find a ticket", "frontier     every arm", "eval         evaluate",
                   "python -m lth_lightning tickets show T.pt", "experiment: ", "frontier_mnist_10k_controls"):
        assert needed in out.stdout, needed
