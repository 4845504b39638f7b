"""Embed the scenes of an archive split with a trained model (for evaluation and search)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from core.model import ContrastiveModel
from domains.remote_sensing import cards
from domains.remote_sensing.datamodule import CLOSPDataModule
from domains.remote_sensing.scene_io import SceneError


@dataclass
class EmbeddedScenes:
    """Embeddings and ground truth of one sensor's scenes.

    Attributes:
        sensor: ``"s2"`` or ``"s1"``.
        features: (N, D) normalised image embeddings.
        location: (N, D) normalised location embeddings, or ``None`` without a location tower.
        labels: (N, 12) multi-hot over the 9 land-cover classes + 3 crisis tags.
        dominant: (N,) index of the class covering the most area.
        coords: (N, 2) (lon, lat).
        ids: Scene ids.
        pair_ids: Pair id per scene (empty string when unpaired).
        dataset_index: Row of each scene in its dataset (for pictures).
    """

    sensor: str
    features: torch.Tensor
    location: torch.Tensor | None
    labels: torch.Tensor
    dominant: torch.Tensor
    coords: torch.Tensor
    ids: list[str]
    pair_ids: list[str]
    dataset_index: np.ndarray

    def select(self, mask: np.ndarray) -> EmbeddedScenes:
        """The subset of scenes where ``mask`` is true."""
        index = np.flatnonzero(mask)
        t = torch.from_numpy(index)
        return EmbeddedScenes(
            self.sensor, self.features[t], None if self.location is None else self.location[t],
            self.labels[t], self.dominant[t], self.coords[t], [self.ids[i] for i in index],
            [self.pair_ids[i] for i in index], self.dataset_index[index])


def _dominant(metadata, labels: torch.Tensor) -> torch.Tensor:
    classes = cards.land_cover_classes()
    columns = [f"frac_{c.replace(' ', '_')}" for c in classes]
    if all(c in metadata.columns for c in columns):
        return torch.as_tensor(metadata[columns].to_numpy().argmax(1))
    firsts = []
    for row_labels in metadata["labels"]:
        known = [classes.index(label) for label in row_labels if label in classes]
        firsts.append(known[0] if known else -1)
    return torch.as_tensor(firsts)


@torch.no_grad()
def embed_scenes(model: ContrastiveModel, datamodule: CLOSPDataModule, sensor: str,
                 split: str = "test") -> EmbeddedScenes:
    """Embed every scene of one sensor and split.

    Args:
        model: Trained model with a tower named after the sensor.
        datamodule: Provides the (normalised) scenes.
        sensor: ``"s2"`` or ``"s1"``.
        split: Which split.

    Returns:
        The embedded scenes.
    """
    model.eval()
    device = next(model.parameters()).device
    features, location, labels, coords, ids = [], [], [], [], []
    for batch in datamodule.test_loader(sensor, split):
        features.append(model.encode(sensor, batch["image"].to(device)).cpu())
        if "location" in model.towers:
            location.append(model.encode("location", batch["coords"].to(device)).cpu())
        labels.append(batch["label"])
        coords.append(batch["coords"])
        ids.extend(batch["id"])
    dataset = datamodule.dataset(sensor, split)
    if not ids:
        raise SceneError(f"no readable {sensor} scene in the {split} split of {datamodule.root}")
    metadata = dataset.metadata
    pair_ids = [str(p) for p in metadata["pair_id"]] if "pair_id" in metadata else [""] * len(ids)
    label_tensor = torch.cat(labels)
    return EmbeddedScenes(sensor, torch.cat(features), torch.cat(location) if location else None,
                          label_tensor, _dominant(metadata, label_tensor), torch.cat(coords),
                          ids, pair_ids, np.arange(len(ids)))


def embed_available(model: ContrastiveModel, datamodule: CLOSPDataModule,
                    sensors: list[str], split: str = "test") -> dict[str, EmbeddedScenes]:
    """Embed each sensor's scenes of a split, leaving out (with a warning) sensors it lacks.

    Args:
        model: Trained model.
        datamodule: Provides the scenes.
        sensors: Sensors to embed.
        split: Which split.

    Returns:
        Sensor -> embedded scenes, for the sensors that have readable scenes.

    Raises:
        SceneError: No sensor has a readable scene in the split.
    """
    scenes: dict[str, EmbeddedScenes] = {}
    problems = []
    for sensor in sensors:
        try:
            scenes[sensor] = embed_scenes(model, datamodule, sensor, split)
        except SceneError as error:
            problems.append(str(error))
            warnings.warn(f"{error}; its {sensor} metrics are left out", stacklevel=2)
    if not scenes:
        raise SceneError("; ".join(problems))
    return scenes
