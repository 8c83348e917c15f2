"""Statistics for comparing runs: paired tests and multiple-comparison correction."""
