"""Earth observation: Sentinel-1/2 data, CLOSP / GeoCLOSP training, evaluation and search.

``LandCoverClassifier`` (zero-shot land cover) and ``SceneIndex`` (text search over an
archive) are imported on first use, so light entry points stay light.
"""

from __future__ import annotations

from typing import Any

_LAZY = {"LandCoverClassifier": "domains.remote_sensing.classifier",
         "SceneIndex": "domains.remote_sensing.scene_index"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
