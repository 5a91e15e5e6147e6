"""Reading and publishing results: the fast_ticket summary, budget fronts and the frontier report, sweep
aggregates, and the trackers (W&B, TensorBoard, CSV). Imports nothing from stages or tasks."""
