"""Benchmarks (not tests): python -m benches {overhead,attack,mask,levers,claim,gpu,report,all}."""
