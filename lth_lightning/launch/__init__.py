"""Hydra plumbing: DDP child processes under Hydra, and the end-of-sweep aggregation callback."""
