"""The stage engine: what a cached stage is (identity), running one (runner), the prune step, building arms.

Imports point down only: stages may use reports (trackers, the target metric), never tasks."""
