"""Pathology: H&E tiles <-> captions (tile and slide loaders, stain handling, training, zero-shot).

``TissueClassifier`` is imported lazily, so that reading tiles or slides does not load
torch models.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TissueClassifier"]


def __getattr__(name: str) -> Any:
    if name == "TissueClassifier":
        from domains.pathology.classifier import TissueClassifier

        return TissueClassifier
    raise AttributeError(f"module 'domains.pathology' has no attribute {name!r}")
