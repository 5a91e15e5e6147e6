"""``python -m benches relevel``:

Re-read every stored frontier (benches/results/frontier*.json, make_run.json) with the current verdict code: its level
table, verdicts and headline are derived again from its stored runs, at the levels it was read at. Nothing trains;
the runs, finals and seconds stay as measured. For when the reading changes, not the measurement (#32: every arm's
verdict once read "ticket cheaper").
"""

from __future__ import annotations

import dataclasses
import json

from benches.common import RESULTS
from lth_lightning.config import FrontierConfig
from lth_lightning.reports.frontier import render_frontier
from lth_lightning.reports.fronts import headlines, level_costs
from lth_lightning.results import FrontierResult, from_json, to_json


def relevel(result: FrontierResult) -> FrontierResult:
    """The same runs read again: levels, verdicts, headlines (the frontier task's own functions)."""
    arms = list(dict.fromkeys(r.arm for r in result.rows))
    fc = FrontierConfig(budgets=result.budgets, lrs=result.lrs, seeds=result.seeds, confidence=result.confidence,
                        levels=[lv.level for lv in result.levels])
    levels = level_costs(result.runs, arms, fc, result.controls)
    return dataclasses.replace(result, levels=levels, headline=headlines(levels, arms, fc.saving_threshold,
                                                                         result.metric, result.collapsed))


def run(args) -> None:
    for path in [*sorted(RESULTS.glob("frontier*.json")), RESULTS / "make_run.json"]:
        stored = json.loads(path.read_text())
        result = relevel(from_json(FrontierResult, stored["result"]))
        stored["result"] = to_json(result)
        if "markdown" in stored:
            stored["markdown"] = render_frontier(result)
        path.write_text(json.dumps(stored, indent=2))
        print(f"re-read: {path.name}")
