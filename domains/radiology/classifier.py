"""Zero-shot chest radiograph findings from Python: ``ChestXrayClassifier``.

::

    from domains.radiology import ChestXrayClassifier

    clf = ChestXrayClassifier.from_run("runs/cxr-tiny")
    table = clf.predict(["study1.dcm", "study2.png"], findings=["Pleural Effusion", "Cardiomegaly"])

Built on :class:`core.zero_shot.PromptClassifier` (prompt embeddings cached per
vocabulary) and :class:`core.inference.LoadedRun` (through
:class:`~domains.radiology.run_model.ChestXrayRun`: radiographs read with the DICOM
grey-scale pipeline and prepared as in training). What it adds is CheXzero's rule — per
finding, the softmax over a positive and a negative prompt — for any finding vocabulary,
with names-only or knowledge-card description prompts, and a DataFrame out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.image_text_inference import ImageTextClassifier
from domains.radiology import cards
from domains.radiology.evaluation import zero_shot_probabilities
from domains.radiology.run_model import ChestXrayRun

Radiograph = str | Path | np.ndarray | torch.Tensor


class ChestXrayClassifier(ImageTextClassifier):
    """Per-finding probabilities for chest radiographs, any finding vocabulary.

    Args:
        run: A loaded run (see :meth:`from_run`).
    """

    run_class = ChestXrayRun
    run: ChestXrayRun

    def embed(self, images: Sequence[Radiograph], batch_size: int = 64) -> torch.Tensor:
        """(N, D) normalised embeddings of radiographs (paths or arrays)."""
        return self.run.embed_radiographs(list(images), batch_size=batch_size)

    def predict(self, images: Radiograph | Sequence[Radiograph],
                findings: Sequence[str] | None = None, prompts: str = "names",
                custom_prompts: dict[str, dict[str, list[str]]] | None = None,
                batch_size: int = 64) -> pd.DataFrame:
        """Probability of each finding for each radiograph.

        Args:
            images: DICOM / PNG / JPEG paths or (H, W) arrays (one or a list).
            findings: Findings to score (default: the 14 CheXpert observations); any
                name works — those outside the card are prompted by their name.
            prompts: ``"names"`` (CheXzero's "{}" / "no {}") or ``"descriptions"`` (the
                card's visual descriptions).
            custom_prompts: Explicit ``{"positive": [...], "negative": [...]}`` per finding.
            batch_size: Radiographs per forward pass.

        Returns:
            One row per radiograph (indexed by its path or position), one column per
            finding, probabilities in [0, 1].
        """
        if isinstance(images, str | Path | np.ndarray | torch.Tensor):
            images = [images]
        findings = list(findings) if findings is not None else cards.findings()
        features = self.embed(images, batch_size)  # (N, D)
        probabilities = zero_shot_probabilities(self.prompts, features, findings, prompts,
                                                custom_prompts)  # (N, F)
        index = [str(image) if isinstance(image, str | Path) else i
                 for i, image in enumerate(images)]
        return pd.DataFrame(probabilities.numpy(), index=index, columns=findings)
