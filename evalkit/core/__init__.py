"""The one shared embedding core every encoder goes through."""

from evalkit.core.embed import EmbeddingCore

__all__ = ["EmbeddingCore"]
