"""The models a radiology run trains side by side: the main model and its comparison companions.

- ``main``: the model the run is about (``cxr-tiny`` by default: soft targets from the
  finding labels, so studies with the same findings are not pushed apart);
- ``clip``: the same model trained with plain InfoNCE (every other report is a negative),
  to show what the soft targets add.

The variant family is :mod:`core.image_text_runs` (shared with pathology); radiology
adds no check of its own.
"""

from __future__ import annotations

from core import image_text_runs
from core.image_text_runs import COMPANIONS, Variant

__all__ = ["COMPANIONS", "Variant", "build_variants"]


def build_variants(model_name: str, companions: list[str],
                   overrides: dict | None = None) -> list[Variant]:
    """The main model and the requested companions, with their configs.

    Args:
        model_name: Registry name of the main model.
        companions: Any of :data:`COMPANIONS`.
        overrides: Model-config overrides applied to every variant (e.g. the loss).

    Returns:
        The variants, main first (see :func:`core.image_text_runs.build_variants`).
    """
    return image_text_runs.build_variants(model_name, companions, overrides)
