"""The models a radiology run trains side by side: the main model and its comparison companions.

- ``main``: the model the run is about (``cxr-tiny`` by default: soft targets from the
  finding labels, so studies with the same findings are not pushed apart);
- ``clip``: the same model trained with plain InfoNCE (every other report is a negative),
  to show what the soft targets add.

The variant family is :mod:`core.image_text_runs` (shared with pathology); radiology
adds no check of its own.
"""

from __future__ import annotations

from core.image_text_runs import COMPANIONS, Variant, build_variants

__all__ = ["COMPANIONS", "Variant", "build_variants"]
