"""docs/api.md runs as written (STEPS lowered), and the API's refusals are one clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lth_lightning import api
from lth_lightning.errors import ConfigError, UserError

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_the_api_page_runs_as_written(tmp_path, monkeypatch, capsys):
    code, _ = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)  # its cache and run folder land here
    exec(compile(code.replace("STEPS = 20", "STEPS = 2"), str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "ticket: 80% of weights removed" in out
    assert {line.split(":")[0] for line in out.splitlines()[1:]} == {"ticket", "random_mask", "dense"}
    assert len(list((tmp_path / "cache").glob("*/result.json"))) == 4  # find, ticket, random_mask, dense


def test_the_api_refuses_what_the_cli_refuses(tmp_path):
    with pytest.raises(ConfigError, match=r"prune.ratio=1.5 must be in \[0, 1\)"):
        api.compose("prune.ratio=1.5")
    cfg = api.compose(experiment="fast_ticket")
    with pytest.raises(UserError, match="trains from a finding"):
        api.train_arm(cfg, "ticket")
    with pytest.raises(UserError, match="not a result file"):
        api.read_result(tmp_path / "notes.txt")


def test_the_callback_block_runs_as_written(tmp_path, monkeypatch, capsys):
    """#33: the ticket as a callback in a module of one's own: 80 % pruned, no pruned weight regrows under weight
    decay and momentum, the passes counted (FGSM 2 and PGD-3 4 per example: 64 * 2 + 2 * 64 * 4)."""
    _, code = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "sparsity 80%, nonzero pruned weights 0, passes 640"
