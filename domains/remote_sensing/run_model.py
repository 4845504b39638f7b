"""A trained run, loaded for inference: its model, sensors, band orders and scene size.

Shared by the zero-shot classifier and the archive index, so both normalise and tile
scenes exactly as training saw them. Scenes larger than the training size are cut into
training-size tiles (overlapping where the side is not a multiple) whose normalised
embeddings are averaged and re-normalised; smaller scenes are resized up.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_run, read_run_config
from core.model import ContrastiveModel
from domains.remote_sensing.datamodule import normaliser, sensor_bands
from domains.remote_sensing.transforms import NormalizeBands

SENSORS = ("s2", "s1")


def run_folder(run: str | Path, variant: str = "main") -> Path:
    """The folder holding a variant's weights: the run folder, or ``companions/<variant>``.

    Raises:
        FileNotFoundError: Naming the folder, when it holds no trained model.
    """
    folder = Path(run) if variant == "main" else Path(run) / "companions" / variant
    if not (folder / CONFIG_FILE).is_file():
        companions = sorted(p.name for p in (Path(run) / "companions").glob("*")) \
            if (Path(run) / "companions").is_dir() else []
        hint = f" (companions here: {', '.join(companions)})" if companions else ""
        raise FileNotFoundError(f"{folder}: no trained model ({CONFIG_FILE} missing); pass a "
                                f"run folder written by domains.remote_sensing.train{hint}")
    return folder


def run_fingerprint(folder: str | Path) -> str:
    """SHA-256 over a run folder's weights and config (what an index was built with)."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        path = Path(folder) / name
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def tile_starts(length: int, tile: int) -> list[int]:
    """Start offsets of ``ceil(length / tile)`` tiles covering ``length`` (last one flush)."""
    count = max(1, math.ceil(length / tile))
    if count == 1:
        return [0]
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tiles_of(image: torch.Tensor, size: int | None) -> torch.Tensor:
    """Cut a normalised scene into model-size tiles.

    Args:
        image: (C, H, W) normalised scene.
        size: The model's input side (``None``: any size, the scene is one tile).

    Returns:
        (T, C, size, size) tiles (T = 1 when the scene is not larger than ``size``).
    """
    if size is None:
        return image[None]
    height, width = image.shape[-2:]
    if min(height, width) < size:  # resize up so the short side fits one tile
        factor = size / min(height, width)
        shape = (max(size, round(height * factor)), max(size, round(width * factor)))
        image = F.interpolate(image[None].float(), size=shape, mode="bilinear",
                              align_corners=False)[0]
        height, width = shape
    return torch.stack([image[:, top:top + size, left:left + size]
                        for top in tile_starts(height, size)
                        for left in tile_starts(width, size)])  # (T, C, size, size)


@dataclass
class LoadedRun:
    """A trained model ready for inference.

    Attributes:
        folder: The variant's folder (weights + config).
        model: The model, in eval mode.
        bands: Sensor -> band order, for the sensors the model has a tower for.
        image_size: Side of the model's input in pixels (``None``: any size).
        proximity_weight: GeoCLOSP's location weight chosen on the validation split
            (from the run's ``metrics.json``), ``None`` when unknown or not GeoCLOSP.
        fingerprint: SHA-256 of the weights and config.
    """

    folder: Path
    model: ContrastiveModel
    bands: dict[str, list[str]]
    image_size: int | None
    proximity_weight: float | None
    fingerprint: str
    _normalisers: dict[str, NormalizeBands] = field(default_factory=dict, init=False,
                                                    repr=False)

    @classmethod
    def load(cls, run: str | Path, variant: str = "main",
             device: str | torch.device = "cpu") -> LoadedRun:
        """Load a run folder written by ``domains.remote_sensing.train``.

        Args:
            run: The run folder (or a companion's folder).
            variant: ``main`` or a companion (``rgb``, ``s1_alone``, ``geo``).
            device: Where to run the model.

        Returns:
            The loaded run.
        """
        folder = run_folder(run, variant)
        model = load_run(folder, device=device)
        config = read_run_config(folder)
        all_bands = sensor_bands(config["model"].get("extra", {}))
        if config.get("s2_bands"):
            all_bands["s2"] = list(config["s2_bands"])
        sensors = [s for s in SENSORS if s in model.towers]
        if not sensors:
            raise ValueError(f"{folder}: the model has no image tower for {' or '.join(SENSORS)}")
        sizes = {model.config.towers[s].get("img_size") for s in sensors}
        if len(sizes) > 1:
            raise ValueError(f"{folder}: sensor towers differ in img_size {sizes}")
        return cls(folder, model, {s: all_bands[s] for s in sensors}, sizes.pop(),
                   _proximity_weight(Path(run), variant, model), run_fingerprint(folder))

    @property
    def sensors(self) -> list[str]:
        """The sensors the model embeds."""
        return list(self.bands)

    @property
    def has_location(self) -> bool:
        """Whether the model has a location tower (GeoCLOSP)."""
        return "location" in self.model.towers

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return next(self.model.parameters()).device

    def check_sensor(self, sensor: str) -> None:
        """Raise a clear error when the model has no tower for ``sensor``."""
        if sensor not in self.bands:
            raise ValueError(f"{self.folder}: this model embeds {', '.join(self.sensors)} "
                             f"scenes, not {sensor}")

    def normalise(self, sensor: str, image: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Standardise a raw scene (S2 digital numbers, S1 dB) in the model's band order.

        Args:
            sensor: ``"s2"`` or ``"s1"``.
            image: (C, H, W) raw values, NaN where nodata.

        Returns:
            (C, H, W) float32, NaN replaced by 0 (the band mean).
        """
        self.check_sensor(sensor)
        tensor = torch.as_tensor(np.asarray(image, dtype=np.float32)) \
            if not isinstance(image, torch.Tensor) else image.float()
        if sensor not in self._normalisers:  # built once per sensor, not once per scene
            self._normalisers[sensor] = normaliser(sensor, self.bands[sensor])
        return self._normalisers[sensor]({"image": tensor})["image"]

    @torch.no_grad()
    def embed_images(self, sensor: str, images: Sequence[torch.Tensor],
                     batch_size: int = 64) -> torch.Tensor:
        """Embed normalised scenes of any size (tiled and averaged when larger than training).

        Args:
            sensor: The sensor tower to use.
            images: (C, H, W) normalised scenes.
            batch_size: Tiles per forward pass.

        Returns:
            (N, D) normalised embeddings on the CPU.
        """
        self.check_sensor(sensor)
        self.model.eval()
        tiles = [tiles_of(image, self.image_size) for image in images]
        owners = torch.cat([torch.full((len(t),), i) for i, t in enumerate(tiles)])  # (T,)
        embedded = torch.zeros(len(images), self.model.embed_dim)  # (N, D) sums
        by_shape: dict[tuple[int, ...], list[int]] = {}  # convolutional models: any size
        flat = [tile for group in tiles for tile in group]
        for position, tile in enumerate(flat):
            by_shape.setdefault(tuple(tile.shape), []).append(position)
        for positions in by_shape.values():
            for start in range(0, len(positions), batch_size):
                chosen = positions[start:start + batch_size]
                batch = torch.stack([flat[p] for p in chosen]).to(self.device)  # (B, C, h, w)
                features = self.model.encode(sensor, batch).float().cpu()  # (B, D)
                embedded.index_add_(0, owners[chosen], features)
        return F.normalize(embedded, dim=1)

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str]) -> torch.Tensor:
        """(Q, D) normalised text embeddings on the CPU."""
        self.model.eval()
        return self.model.encode("text", list(texts)).float().cpu()

    @torch.no_grad()
    def embed_location(self, coords: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, D) normalised location embeddings of (N, 2) (lon, lat) on the CPU."""
        if not self.has_location:
            raise ValueError(f"{self.folder}: the model has no location tower (not GeoCLOSP)")
        tensor = torch.as_tensor(np.asarray(coords, dtype=np.float32)).reshape(-1, 2)
        return self.model.encode("location", tensor.to(self.device)).float().cpu()


def _proximity_weight(run: Path, variant: str, model: ContrastiveModel) -> float | None:
    """GeoCLOSP's validation-chosen location weight from the run's metrics.json, if any."""
    if "location" not in model.towers or not (run / "metrics.json").is_file():
        return None
    try:
        metrics = json.loads((run / "metrics.json").read_text())
        return float(metrics["variants"][variant]["crisis_fused"]["proximity_weight"])
    except (KeyError, TypeError, ValueError):
        return None
