"""Radiology: chest radiographs <-> reports (DICOM reading, report parsing, training, zero-shot).

``ChestXrayClassifier`` is imported lazily, so that reading DICOMs or reports does not
load torch models.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChestXrayClassifier"]


def __getattr__(name: str) -> Any:
    if name == "ChestXrayClassifier":
        from domains.radiology.classifier import ChestXrayClassifier

        return ChestXrayClassifier
    raise AttributeError(f"module 'domains.radiology' has no attribute {name!r}")
