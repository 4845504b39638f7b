"""A trained CLOSP / GeoCLOSP run loaded for inference: sensors, band orders, location weight.

Built on :class:`core.inference.LoadedRun` (loading, fingerprint, tiling, batched
embedding). This adds what is about satellites: each sensor tower's band order (from the
saved model config, so an RGB companion reads three bands), the sensors' normalisation
(:func:`~domains.remote_sensing.transforms.normaliser`, the one training uses, with the
Sentinel-2 level the run recorded as the default for scenes that do not say theirs) and
GeoCLOSP's validation-chosen location weight. Shared by the zero-shot classifier and
the archive index, so both see scenes exactly as training saw them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.inference import LoadedRun
from core.model import ContrastiveModel
from domains.remote_sensing import cards
from domains.remote_sensing.transforms import normaliser, sensor_bands

SENSORS = ("s2", "s1")


@dataclass
class SceneRun(LoadedRun):
    """A trained remote-sensing model ready for inference.

    Attributes:
        bands: Sensor -> band order, for the sensors the model has a tower for.
        proximity_weight: GeoCLOSP's location weight chosen on the validation split
            (from the run's ``metrics.json``), ``None`` when unknown or not GeoCLOSP.
        s2_level: The Sentinel-2 processing level the run was trained on (its saved
            ``s2_level``, else the card's default level for runs that recorded none): the
            normalisation of scenes that do not say their level (in-memory arrays).
    """

    bands: dict[str, list[str]] = field(default_factory=dict)
    proximity_weight: float | None = None
    s2_level: str = "L1C"

    @classmethod
    def load(cls, run: str | Path, variant: str = "main",
             device: str | torch.device = "cpu") -> SceneRun:
        """Load a run folder written by ``domains.remote_sensing.train``.

        Args:
            run: The run folder.
            variant: ``main`` or a companion (``rgb``, ``s1_alone``, ``geo``).
            device: Where to run the model.

        Returns:
            The loaded run.
        """
        fields = LoadedRun.open(run, variant, device, image_towers=SENSORS)
        model, config = fields["model"], fields["config"]
        all_bands = sensor_bands(config["model"].get("extra", {}))
        if config.get("s2_bands"):
            all_bands["s2"] = list(config["s2_bands"])
        sensors = [s for s in SENSORS if s in model.towers]
        if not sensors:
            raise ValueError(f"{fields['folder']}: the model has no image tower for "
                             f"{' or '.join(SENSORS)}")
        bands = {s: all_bands[s] for s in sensors}
        level = str(config.get("s2_level") or cards.card("sentinel2")["default_level"])
        return cls(**fields, transforms={s: normaliser(s, bands[s], level) for s in sensors},
                   bands=bands, proximity_weight=_proximity_weight(Path(run), variant, model),
                   s2_level=level)

    @property
    def sensors(self) -> list[str]:
        """The sensors the model embeds."""
        return list(self.bands)

    def check_sensor(self, sensor: str) -> None:
        """Raise a clear error when the model has no tower for ``sensor``."""
        if sensor not in self.bands:
            raise ValueError(f"{self.folder}: this model embeds {', '.join(self.sensors)} "
                             f"scenes, not {sensor}")

    def normalise(self, sensor: str, image: np.ndarray | torch.Tensor,
                  level: str | None = None) -> torch.Tensor:
        """Standardise a read scene (S2 reflectance, S1 dB) in the model's band order.

        Args:
            sensor: ``"s2"`` or ``"s1"``.
            image: (C, H, W) values as the readers return them, NaN where nodata.
            level: The S2 scene's processing level (``None``: the run's :attr:`s2_level`).

        Returns:
            (C, H, W) float32, NaN replaced by 0 (the band mean).
        """
        self.check_sensor(sensor)
        tensor = image.float() if isinstance(image, torch.Tensor) else \
            torch.as_tensor(np.asarray(image, dtype=np.float32))
        sample = {"image": tensor, **({"level": level} if level and sensor == "s2" else {})}
        return self.transforms[sensor](sample)["image"]


def _proximity_weight(run: Path, variant: str, model: ContrastiveModel) -> float | None:
    """GeoCLOSP's validation-chosen location weight from the run's metrics.json, if any."""
    if "location" not in model.towers or not (run / "metrics.json").is_file():
        return None
    try:
        metrics = json.loads((run / "metrics.json").read_text())
        return float(metrics["variants"][variant]["crisis_fused"]["proximity_weight"])
    except (KeyError, TypeError, ValueError):
        return None
