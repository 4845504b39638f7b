"""An on-disk cache of text embeddings, keyed by text-model identity and text.

A frozen text tower computes each caption once: embeddings are kept in memory
and persisted as one safetensors file (+ a JSON list of keys) per model
identity, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from core.atomic import atomic_write_bytes


def default_cache_root() -> Path:
    """The cache root: ``$MOSAIC_VLM_CACHE`` or ``~/.cache/mosaic-vlm``."""
    return Path(os.environ.get("MOSAIC_VLM_CACHE", Path.home() / ".cache" / "mosaic-vlm"))


def text_key(text: str) -> str:
    """Stable key of one text: its SHA-1 hex digest."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class TextEmbeddingCache:
    """Embeddings of texts for one text-model identity, persisted on disk.

    Args:
        folder: Root folder of the cache (one sub-folder per model identity).
        model_identity: A string naming the model, pooling and max length.
    """

    def __init__(self, folder: str | Path, model_identity: str) -> None:
        digest = hashlib.sha1(model_identity.encode("utf-8")).hexdigest()[:16]
        self.folder = Path(folder) / digest
        self.model_identity = model_identity
        self.hits = 0
        self.misses = 0
        self._rows: dict[str, torch.Tensor] = {}
        self._dirty = False
        self._load()

    @property
    def _weights_path(self) -> Path:
        return self.folder / "embeddings.safetensors"

    @property
    def _keys_path(self) -> Path:
        return self.folder / "keys.json"

    def _load(self) -> None:
        if not (self._weights_path.is_file() and self._keys_path.is_file()):
            return
        try:
            keys = json.loads(self._keys_path.read_text(encoding="utf-8"))["keys"]
            table = load_file(str(self._weights_path))["embeddings"]  # (N, D)
        except Exception:  # a damaged cache is rebuilt, never trusted
            return
        if len(keys) != table.shape[0]:
            return
        self._rows = {key: table[i] for i, key in enumerate(keys)}

    def __len__(self) -> int:
        return len(self._rows)

    def lookup(self, texts: Sequence[str]) -> list[torch.Tensor | None]:
        """Return the cached embedding of each text, or ``None`` where absent."""
        found = [self._rows.get(text_key(t)) for t in texts]
        hits = sum(row is not None for row in found)
        self.hits += hits
        self.misses += len(found) - hits
        return found

    def store(self, texts: Sequence[str], embeddings: torch.Tensor) -> None:
        """Add embeddings (N, D) of ``texts`` to the cache (in memory until :meth:`flush`)."""
        for text, row in zip(texts, embeddings.detach().float().cpu(), strict=True):
            self._rows[text_key(text)] = row.clone()
        self._dirty = True

    def flush(self) -> None:
        """Write the cache to disk atomically if anything was added."""
        if not self._dirty or not self._rows:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = list(self._rows)
        table = torch.stack([self._rows[k] for k in keys])  # (N, D)
        atomic_write_bytes(self._weights_path, save({"embeddings": table.contiguous()}))
        payload = {"model": self.model_identity, "keys": keys}
        atomic_write_bytes(self._keys_path, json.dumps(payload).encode("utf-8"))
        self._dirty = False
