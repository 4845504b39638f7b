"""Open a held-out split and embed its radiographs and reports for evaluation.

Studies are opened through the layouts table (:func:`domains.radiology.archives.open_dataset`)
with the model's own per-sample transform (:func:`~domains.radiology.transforms.prepare`),
never through the training data module, and embedded with :func:`core.inference.embed_batches`.
What this keeps beside the embeddings: the raw labels (1 / 0 / -1 / NaN), the opaque
study ids and the report captions (for the report's retrieval example only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from core.inference import embed_batches
from core.model import ContrastiveModel
from domains.radiology.archives import open_dataset
from domains.radiology.transforms import prepare


@dataclass
class EmbeddedStudies:
    """One split embedded by one model.

    Attributes:
        images: (N, D) normalised radiograph embeddings.
        reports: (N, D) normalised report embeddings.
        labels: (N, F) labels in ``cards.findings()`` order (1 / 0 / -1 / NaN).
        ids: Opaque study ids.
        captions: Report captions (what the text tower embedded).
        bad_samples: ``(path, problem)`` of studies skipped while reading.
        dataset: The opened dataset (for pictures of retrieved studies).
    """

    images: torch.Tensor
    reports: torch.Tensor
    labels: np.ndarray
    ids: list[str]
    captions: list[str]
    bad_samples: list[tuple[str, str]] = field(default_factory=list)
    dataset: Any = None


def open_split(root: Path, split: str, model_extra: dict[str, Any], layout: str | None = None,
               options: dict[str, Any] | None = None, preload: bool = False) -> Any:
    """A split of a data folder with a model's evaluation transform."""
    return open_dataset(root, split, transforms=prepare(model_extra), layout=layout,
                        preload=preload, **(options or {}))


@torch.no_grad()
def embed_split(model: ContrastiveModel, root: Path, split: str = "test",
                layout: str | None = None, batch_size: int = 64,
                options: dict[str, Any] | None = None, preload: bool = False
                ) -> EmbeddedStudies:
    """Embed the radiographs and reports of one split.

    Args:
        model: The trained model (``image`` and ``text`` towers).
        root: Data folder.
        split: ``train``, ``val`` or ``test``.
        layout: On-disk layout (``None``: detected).
        batch_size: Studies per forward pass.
        options: Extra keyword arguments of the layout's loader.
        preload: Decode every radiograph when the split is opened.

    Returns:
        The embedded studies.
    """
    dataset = open_split(root, split, model.config.extra, layout, options, preload)
    if len(dataset) == 0:
        raise ValueError(f"{root}: the {split} split has no readable study")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    found = embed_batches(model, loader, {"image": "image", "text": "caption"},
                          keep=("label", "id", "caption"))
    return EmbeddedStudies(images=found["image"], reports=found["text"],
                           labels=found["label"].numpy().astype(np.float64),
                           ids=[str(i) for i in found["id"]], captions=list(found["caption"]),
                           bad_samples=list(dataset.bad_samples), dataset=dataset)
