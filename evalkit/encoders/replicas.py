"""Several devices, one model: a replica per device, batches shared out, vectors merged back in input order.

The core hands each replica its own share of the batches on its own thread (CUDA kernels release the GIL), so two
GPUs encode about twice as fast; tokenizing and the fingerprint come from the first replica, since all are equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from evalkit.encoders.protocol import Capabilities, Encoder, OutputKind, capabilities_of


class ReplicatedEncoder:
    """An Encoder backed by one identical replica per device."""

    def __init__(self, replicas: Sequence[Encoder]) -> None:
        if not replicas:
            raise ValueError("at least one replica is needed")
        self.replicas = list(replicas)
        self.name = self.replicas[0].name
        first = capabilities_of(self.replicas[0])
        if first.level != "tokens":
            raise ValueError(f"replicas are token-level models; '{self.name}' works on {first.level}")
        self.capabilities: Capabilities = replace(first, replicas=len(self.replicas))

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return self.replicas[0].prepare(texts, prompt)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.replicas[0].tokenize(texts)

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return self.replicas[0].embed_batch(token_ids)

    def embed_outputs(self, token_ids: list[list[int]], outputs: tuple[OutputKind, ...]) -> Mapping[str, object]:
        return self.replicas[0].embed_outputs(token_ids, outputs)  # type: ignore[attr-defined]

    def fingerprint(self) -> dict[str, object]:
        return self.replicas[0].fingerprint()

    @property
    def runtime(self) -> str:
        """The replicas' runtime (``torch`` for a replica that names none), or ``mixed`` when they differ."""
        names = {str(getattr(replica, "runtime", "torch")) for replica in self.replicas}
        return names.pop() if len(names) == 1 else "mixed"

    @property
    def runtime_choice(self) -> dict[str, Any] | None:
        """The run record's ``runtime_choice``: the replicas', which are built with the same settings and so agree;
        where they do not (an ``auto`` probe measured per device), each replica's, in device order."""
        choices = [getattr(replica, "runtime_choice", None) for replica in self.replicas]
        if all(choice == choices[0] for choice in choices):
            return choices[0]
        return {"runtime": "mixed", "reason": "replicas differ", "replicas": choices}


def parse_devices(device: str) -> list[str]:
    """``cuda`` means every visible GPU; ``cuda:0,cuda:1`` the ones listed; anything else one device."""
    if "," in device:
        return [d.strip() for d in device.split(",") if d.strip()]
    if device == "cuda":
        import torch

        count = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(count)] if count > 1 else ["cuda"]
    return [device]
