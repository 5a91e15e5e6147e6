"""2-process CPU (gloo) DDP: the pipeline runs, masks and weights are identical on every rank."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.slow  # two 2-process pipelines (~20 s each): .ci/run runs them after make test
@pytest.mark.parametrize("structure", ["unstructured", "channel"])
def test_two_rank_ddp_pipeline_keeps_ranks_identical(tmp_path, structure):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, str(WORKER), str(tmp_path), f"prune.structure={structure}"],
                         capture_output=True, text=True, env=env, timeout=420)
    assert out.returncode == 0, out.stderr[-3000:]
    stages = ["find@lr0.01", "ticket", "reinit", "dense"]
    for stage in stages:
        r0, r1 = (torch.load(tmp_path / f"rank{r}_{stage}.pt", weights_only=True) for r in (0, 1))
        assert r0["masks"].keys() == r1["masks"].keys()
        assert all(torch.equal(r0["masks"][k], r1["masks"][k]) for k in r0["masks"])
        assert all(torch.equal(r0["weights"][k], r1["weights"][k]) for k in r0["weights"]), stage
        assert r0["ledger"]["passes"] == r1["ledger"]["passes"] > 0
        assert r0["epochs"] == r1["epochs"] == (2 if stage.startswith("find") else 1)  # early bird: same stop
    ticket = torch.load(tmp_path / "rank0_ticket.pt", weights_only=True)
    assert (tmp_path / "run" / "summary.json").exists()  # written once, by rank 0
    if structure == "channel":  # compact arms: no masks, smaller tensors than dense, same on both ranks
        dense = torch.load(tmp_path / "rank0_dense.pt", weights_only=True)["weights"]
        assert not ticket["masks"] and ticket["weights"].keys() == dense.keys()
        assert sum(v.numel() for v in ticket["weights"].values()) < 0.5 * sum(v.numel() for v in dense.values())
        return
    kept = sum(int(m.sum()) for k, m in ticket["masks"].items() if m.dim() > 1)
    total = sum(m.numel() for k, m in ticket["masks"].items() if m.dim() > 1)
    assert abs(1 - kept / total - 0.8) < 1e-3
