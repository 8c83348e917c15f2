"""Encoder adapters: each kind of model is one small module declaring its ``Capabilities``
(:mod:`evalkit.encoders.protocol`), registered by name and imported lazily (:mod:`evalkit.encoders.adapters`).

Entry points: :func:`build_encoder` / :func:`build_pair_scorer` for what the registry names (every encoding option
reaches every model), :func:`evalkit.encoders.objects.encoder_from_object` for a model object in memory.
"""

from __future__ import annotations

from evalkit.encoders.adapters import (
    Encoding,
    EncodingSettings,
    build_encoder,
    build_pair_scorer,
    load_encoder,
    register,
)
from evalkit.encoders.protocol import Capabilities, Encoder, PairScorer, TextEncoder, capabilities_of

__all__ = [
    "Capabilities",
    "Encoder",
    "Encoding",
    "EncodingSettings",
    "PairScorer",
    "TextEncoder",
    "build_encoder",
    "build_pair_scorer",
    "capabilities_of",
    "load_encoder",
    "register",
]
