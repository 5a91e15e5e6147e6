"""Every command in README's code blocks works as written.

Commands on the bundled digits data run for real, with sizes shrunk (epochs, batches) by appended
overrides; placeholders (``<run>``, ``a.pt``) are filled with files an earlier command made. Commands that
need other data, a GPU, several processes or a multirun are composed and validated against the schema.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from lth_lightning import cli
from lth_lightning.config import validate
from lth_lightning.pruning.cli import main as tickets_main
from tests.conftest import compose_cfg

README = Path(__file__).resolve().parents[1] / "README.md"
SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "pipeline.find.epochs=1", "pipeline.ticket_epochs=1",
         "pipeline.dense_epochs=1", "eval.autoattack=off", "trainer.enable_progress_bar=false"]
# other data, GPUs, several processes, sweeps; frontiers (dozens of runs: tests/test_frontier.py runs one); searches
# (tests/test_search.py); nets and data of one's own (tests/test_own_model.py runs every task on them)
COMPOSE_ONLY = re.compile(
    r"data=(mnist|cifar|fashion|svhn)|_mnist|_cifar|trainer=(gpu|ddp)|^-m$|frontier|search|_target_")


def readme_commands() -> list[list[str]]:
    """The shell commands of README's ```bash blocks, comments removed, as argv lists."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith(("python -m lth_lightning", "lth-lightning"))]


def _hydra_args(argv: list[str]) -> list[str]:
    """The overrides of a ``python -m lth_lightning`` / ``lth-lightning`` command line."""
    args = argv[3:] if argv[0] == "python" else argv[1:]
    return cli.normalize_argv(args) if args[:1] != ["tickets"] else args  # what the entry point does first


def test_readme_lists_the_commands_we_check():
    commands = readme_commands()
    assert len(commands) >= 12
    assert any("tickets" in c for c in commands) and any("task=eval" in c for c in commands)


def test_every_readme_command_works(tmp_path, capsys):
    made: dict[str, str] = {}
    ran = composed = 0
    for argv in readme_commands():
        if argv[:3] == ["python", "-m", "lth_lightning.reports.aggregate"]:
            continue  # needs a finished sweep: tests/test_sweep.py runs it
        args = _hydra_args(argv)
        if args[:1] == ["tickets"]:
            files = [made["ticket"], made.get("ticket2", made["ticket"])]
            assert tickets_main([args[1], *files[: len(args) - 2]]) == 0, argv
            out = capsys.readouterr().out
            if args[1] == "compare":  # per-layer IoU and Hamming distance, and the overall row
                assert "overall" in out and "iou" in out.lower() and "hamming" in out.lower(), out
            else:
                assert "sparsity" in out, out
            continue
        args = [f"ckpt_path={made['checkpoint']}" if a.startswith("ckpt_path=") else a for a in args]
        overrides = [a for a in args if a not in ("-m",) and not a.startswith(("hydra.", "hydra/"))]
        if any(COMPOSE_ONLY.search(a) for a in args):
            first = [o.split(",")[0] for o in overrides] if "-m" in args else overrides  # a sweep's first job
            validate(compose_cfg(first, tmp_path))
            composed += 1
            continue
        run_dir = tmp_path / f"run{ran}"
        raw = compose_cfg([*overrides, *SHORT, f"pipeline.cache_dir={tmp_path / 'cache'}"], run_dir)
        result = cli.run(raw)
        ran += 1
        if getattr(result, "best_checkpoint", None):
            made["checkpoint"] = result.best_checkpoint
        for level in (1, 2):
            ticket = run_dir / f"level_{level}" / "ticket.pt"
            if ticket.exists():
                made["ticket" if level == 1 else "ticket2"] = str(ticket)
    assert ran >= 4 and composed >= 5


HYDRA_COMMANDS = [c for c in readme_commands() if "tickets" not in c and "lth_lightning.reports.aggregate" not in c]


@pytest.mark.parametrize("argv", HYDRA_COMMANDS, ids=lambda a: " ".join(a)[:60])
def test_readme_command_names_real_options(argv):
    """Each override names a real config group option or schema key (the pre-Hydra checks pass)."""
    args = [a for a in _hydra_args(argv) if not a.startswith("-")]
    groups = cli.config_groups(cli.CONF_DIR)
    cli.check_groups(args, groups)
    cli.check_override_keys(args, cli.Config, groups)


def test_readme_results_are_what_the_stored_results_say():
    """#25: README's result prose is the block `python -m benches report` renders from benches/results; a stored
    result that changes without the README (or a hand edit inside the block) fails here."""
    from benches.report import README_END, README_START, readme_block

    text = README.read_text()
    block = text[text.index(README_START): text.index(README_END) + len(README_END)]
    assert block == readme_block(README.parent / "benches" / "results")
    assert "narrow" in block and "ticket ahead of its best control at" in block


def test_readme_make_run_numbers_are_a_stored_run_of_that_command():
    """#31: the digits table, tops and verdict lines under "Two commands" are rendered from stored runs of exactly
    `make run` and `+experiment=fast_ticket` at their defaults (one pinned thread: a fresh clone computes them)."""
    import json

    from benches.report import MAKE_RUN_END, MAKE_RUN_START, make_run_block

    results = README.parent / "benches" / "results"
    text = README.read_text()
    block = text[text.index(MAKE_RUN_START): text.index(MAKE_RUN_END) + len(MAKE_RUN_END)]
    assert block == make_run_block(results)
    stored = json.loads((results / "make_run.json").read_text())
    assert stored["workload"] == "python -m lth_lightning +experiment=frontier"
    assert "python -m lth_lightning +experiment=frontier" in (README.parent / "Makefile").read_text()
    cfg = compose_cfg(["experiment=frontier"], README.parent / "outputs")
    assert validate(cfg).trainer.num_threads == 1  # pinned, so the stored numbers reproduce anywhere


# -- #31: hand-written prose may not contradict the stored results -----------------------------------------------------
RESULTS = README.parent / "benches" / "results"
TABLES = {"1": ["overhead"], "2": ["attack"], "3": ["mask"], "4": ["claim", "claim_no_ramp"], "5": ["levers"],
          "6": ["gpu"], "7": ["frontier", "frontier_10k", "frontier_10k_controls", "frontier_structures"],
          "8": ["regime"], "9": ["channels"], "10": ["channels", "claim"], "11": ["regime"], "12": ["frontier_10k"],
          "13": ["regime"], "14": ["frontier_10k_controls"], "15": ["search"]}  # docs/benchmarks.md's rows -> results
# a number that is a setting or someone else's, not a measurement of ours: the paper's, a target, a sparsity asked for
NOT_OURS = re.compile(r"paper|target|issue's|Li et al|Wong et al|they report|sparsity|of channels|aligned \d+ %$|"
                      r"≥ \d+(\.\d+)? ?%$|at \d+ %$")


def _numbers(value: object, out: set[float]) -> set[float]:
    """Every number in a stored result: its values, and those inside its rendered markdown and texts."""
    if isinstance(value, dict):
        for v in value.values():
            _numbers(v, out)
    elif isinstance(value, list):
        for v in value:
            _numbers(v, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out.add(float(value))
    elif isinstance(value, str):
        out.update(float(m) for m in re.findall(r"\d+(?:\.\d+)?", value))
    return out


def _cited(paragraph: str, pools: dict[str, set[float]]) -> set[str]:
    """The result files a paragraph names: by path, table number (or table row), variation or regime part."""
    keys = set(re.findall(r"results/(\w+)\.json", paragraph))
    for table in re.findall(r"tables? (\d+)", paragraph) + re.findall(r"^\| (\d+) \|", paragraph):
        keys |= set(TABLES.get(table, []))
    for name in re.findall(r"variation `(\w+)`", paragraph):
        keys |= {k for k in (f"frontier_{name}", f"claim_{name}") if k in pools}
    if re.search(r"part `\w+`|regime map", paragraph):
        keys.add("regime")
    return keys & set(pools) or set(pools)  # naming none: any stored result must hold it


def test_hand_written_numbers_are_in_the_results_they_cite():
    """Outside the generated blocks, every "N %" and "k of n seeds/runs" in README.md and docs/benchmarks.md must be a
    number of the stored results its paragraph cites (to the digits shown): prose that drifts from a re-measurement, or
    a number typed from memory, fails here."""
    pools = {p.stem: _numbers(json.loads(p.read_text()), set()) for p in RESULTS.glob("*.json")}
    wrong = []
    for doc in (README, README.parent / "docs" / "benchmarks.md"):
        text = re.sub(r"<!-- (\w+):start -->.*?<!-- \1:end -->", "", doc.read_text(), flags=re.S)
        for paragraph in re.split(r"\n(?=- |\n|\| \d)", text):
            pool = set().union(*(pools[k] for k in _cited(paragraph, pools)))
            for match in re.finditer(r"(?<![\w.])(\d+(?:\.\d+)?) ?%|(\d+) of (\d+) (?:seeds|runs)", paragraph):
                if NOT_OURS.search(paragraph[max(0, match.start() - 60): match.end()]):
                    continue
                for shown in (g for g in match.groups() if g):
                    digits = len(shown.partition(".")[2])
                    if not any(float(shown) in (round(v, digits), round(100 * v, digits)) for v in pool):  # or a
                        # fraction shown in %
                        wrong.append(f"{doc.name}: {shown} in ...{paragraph[max(0, match.start() - 50):match.end()]}")
    assert not wrong, "\n".join(wrong)
