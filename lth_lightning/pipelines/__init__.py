"""Tasks the CLI runs: plain training (with optional IMP), the fast_ticket pipeline, evaluation."""
