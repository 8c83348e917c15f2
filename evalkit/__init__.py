"""evalkit: an evaluation harness for text-embedding models.

The data flows one way: registry → loader → encoder core → search/scoring → results → reports.
"""

__version__ = "0.1.0"
