"""Registries: which tasks and which models evalkit knows, as validated records."""
