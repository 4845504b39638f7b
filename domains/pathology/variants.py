"""The models a pathology run trains side by side: the main model and its comparison companions.

- ``main``: the model the run is about (``path-tiny`` by default: soft targets from the
  tile classes, so two captions of the same tissue class are not pushed apart);
- ``clip``: the same model trained with plain InfoNCE (every other caption is a
  negative), to show what the soft targets add.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import runs
from core.registry import get_model_config
from domains.pathology.transforms import input_size, stain_normalisation

COMPANIONS = ("clip",)


@dataclass
class Variant(runs.Variant):
    """One model trained in a run (see :class:`core.runs.Variant`).

    Attributes:
        loss: The loss it trains with (``None``: the run's).
    """

    loss: dict | None = None

    @property
    def image_size(self) -> int:
        """The side tiles are resized to for this model."""
        return input_size(self.config.extra)


def build_variants(model_name: str, companions: list[str],
                   overrides: dict | None = None) -> list[Variant]:
    """The main model and the requested companions, with their configs.

    Args:
        model_name: Registry name of the main model.
        companions: Any of :data:`COMPANIONS`.
        overrides: Model-config overrides applied to every variant (e.g. the loss).

    Returns:
        The variants, main first.
    """
    overrides = overrides or {}
    main = runs.main_model_config(model_name, companions, COMPANIONS, overrides)
    if "image" not in main.towers or "text" not in main.towers:
        raise ValueError(f"model {model_name!r} needs an 'image' and a 'text' tower, has "
                         f"{sorted(main.towers)}")
    if main.towers["image"].get("in_chans") != 3:
        raise ValueError(f"model {model_name!r}: H&E tiles are RGB, the image tower needs "
                         f"in_chans: 3, has {main.towers['image'].get('in_chans')!r}")
    input_size(main.extra)  # fail now, not after training, when it is missing
    stain_normalisation(main.extra)
    variants = [Variant("main", main)]
    if "clip" in companions:
        config = get_model_config(model_name, **{**overrides, "loss": {"type": "clip"}})
        config.name = f"{model_name}-clip"
        variants.append(Variant("clip", config, loss={"type": "clip"}))
    return variants
