"""The models a CLOSP run trains side by side: the main model and its comparison companions.

- ``main``: the model the run is about (CLOSP or GeoCLOSP);
- ``rgb``: the S2 tower on bands B04, B03, B02 only, no S1 — what a user of an RGB
  remote-sensing CLIP gets;
- ``s1_alone``: the S1 tower trained without the S2 branch;
- ``geo``: GeoCLOSP when the main model is CLOSP, CLOSP when it is GeoCLOSP;
- ``infonce``: the main model trained with the ``clip`` loss (symmetric InfoNCE, every
  other scene of the batch a negative) instead of the run's soft targets, so the report
  can put crisis retrieval under both side by side.

Each variant trains with its own config's ``loss`` (the run's loss for all but
``infonce``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core import runs
from core.model import ModelConfig
from core.registry import get_model_config
from domains.remote_sensing.transforms import sensor_bands

RGB_BANDS = ["B04", "B03", "B02"]
COMPANIONS = ("rgb", "s1_alone", "geo", "infonce")
#: The loss of the ``infonce`` companion.
INFONCE_LOSS = {"type": "clip"}


@dataclass
class Variant(runs.Variant):
    """One model trained in a run (see :class:`core.runs.Variant`).

    Attributes:
        sensors: Sensors whose mini-batches it trains on (``s2``, ``s1``).
        s2_bands: Sentinel-2 bands it reads (``None``: all 13).
    """

    sensors: list[str] = field(default_factory=lambda: ["s2", "s1"])
    s2_bands: list[str] | None = None

    @property
    def bands(self) -> dict[str, list[str]]:
        """Band order per sensor (the model config's, ``s2_bands`` for S2 when set)."""
        bands = sensor_bands(self.config.extra)
        if self.s2_bands:
            bands["s2"] = list(self.s2_bands)
        return bands

    @property
    def image_size(self) -> int | None:
        """The sensor towers' common input side (``None``: any size)."""
        sizes = {self.config.towers[s].get("img_size") for s in self.sensors}
        if len(sizes) > 1:
            raise ValueError(f"{self.config.name}: sensor towers differ in img_size {sizes}")
        return sizes.pop()


def _keep_towers(config: ModelConfig, towers: list[str]) -> ModelConfig:
    config.towers = {k: v for k, v in config.towers.items() if k in towers}
    config.pairs = [p for p in config.pairs if p[0] in towers and p[1] in towers]
    return config


def geo_counterpart(model_name: str) -> str:
    """The registry name of the other family at the same size (closp-x <-> geoclosp-x)."""
    family, _, size = model_name.partition("-")
    if family == "closp":
        return f"geoclosp-{size}"
    if family == "geoclosp":
        return f"closp-{size}"
    raise ValueError(f"model {model_name!r} is neither closp-* nor geoclosp-*")


def build_variants(
    model_name: str, companions: list[str], overrides: dict | None = None
) -> list[Variant]:
    """The main model and the requested companions, with their configs.

    Args:
        model_name: Registry name of the main model.
        companions: Any of ``rgb``, ``s1_alone``, ``geo``, ``infonce``.
        overrides: Model-config overrides applied to every variant (e.g. the loss).

    Returns:
        The variants, main first.
    """
    overrides = overrides or {}
    main = runs.main_model_config(model_name, companions, COMPANIONS, overrides)
    variants = [Variant("main", main, sensors=main_sensors(main))]
    if "rgb" in companions:
        config = get_model_config(model_name, **overrides)
        config.towers["s2"]["in_chans"] = len(RGB_BANDS)
        config = _keep_towers(config, ["s2", "text"])
        config.extra.setdefault("sensors", {}).setdefault("s2", {})["bands"] = list(RGB_BANDS)
        config.extra["sensors"].pop("s1", None)
        config.name = f"{model_name}-rgb"
        variants.append(Variant("rgb", config, sensors=["s2"], s2_bands=RGB_BANDS))
    if "s1_alone" in companions:
        config = _keep_towers(get_model_config(model_name, **overrides), ["s1", "text"])
        config.name = f"{model_name}-s1-alone"
        variants.append(Variant("s1_alone", config, sensors=["s1"]))
    if "geo" in companions:
        config = get_model_config(geo_counterpart(model_name), **overrides)
        variants.append(Variant("geo", config, sensors=["s2", "s1"]))
    if "infonce" in companions:
        config = get_model_config(model_name, **{k: v for k, v in overrides.items()
                                                 if k != "loss"})
        config.loss = dict(INFONCE_LOSS)  # replaced, not merged: no soft-target options
        config.name = f"{model_name}-infonce"
        variants.append(Variant("infonce", config, sensors=list(main_sensors(config))))
    return variants


def main_sensors(config: ModelConfig) -> list[str]:
    """The sensors a model config has towers for, S2 first."""
    return [s for s in ("s2", "s1") if s in config.towers]
