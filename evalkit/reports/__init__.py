"""Reports: tables and comparisons read from result files. Reports never recompute scores."""
