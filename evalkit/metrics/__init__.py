"""Metric kernels: pure numpy functions that reproduce the reference implementations (trec_eval, MTEB)."""
