"""The models a pathology run trains side by side: the main model and its comparison companions.

- ``main``: the model the run is about (``path-tiny`` by default: soft targets from the
  tile classes, so two captions of the same tissue class are not pushed apart);
- ``clip``: the same model trained with plain InfoNCE (every other caption is a
  negative), to show what the soft targets add.

The variant family is :mod:`core.image_text_runs` (shared with radiology); pathology adds
its checks of the main model: RGB input, a known stain normalisation.
"""

from __future__ import annotations

from core import image_text_runs
from core.image_text_runs import COMPANIONS, Variant
from core.model import ModelConfig
from domains.pathology.transforms import stain_normalisation

__all__ = ["COMPANIONS", "Variant", "build_variants"]


def check_model(config: ModelConfig) -> None:
    """Refuse a main model H&E tiles cannot train (before training, not after it).

    Raises:
        ValueError: The image tower is not RGB (``in_chans: 3``), or the stain
            normalisation is unknown.
    """
    if config.towers["image"].get("in_chans") != 3:
        raise ValueError(f"model {config.name!r}: H&E tiles are RGB, the image tower needs "
                         f"in_chans: 3, has {config.towers['image'].get('in_chans')!r}")
    stain_normalisation(config.extra)


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
    return image_text_runs.build_variants(model_name, companions, overrides, check=check_model)
