"""Embed the scenes of an archive split with a trained model (for evaluation).

Opens each sensor's split itself (:func:`open_split`: the loader of the archive's
layout, with the sensor's normalisation and the model's input size — the transforms
training used, without augmentation) and embeds it in batches with
:func:`core.inference.embed_batches`. Ground truth (labels, dominant class, pair ids) is
read from the samples, never from a table by position; the cloud fraction of each scene
(``cloud_fraction``, where the archive's table has it) is joined by scene id.
:attr:`EvalData.pre` adds transforms before normalisation (e.g. the single-look speckle
of the robustness evaluation, :class:`~domains.remote_sensing.augment.SpeckleToLooks`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from core.inference import embed_batches
from core.model import ContrastiveModel
from core.transforms import Compose, ResizeImage
from domains.remote_sensing import cards
from domains.remote_sensing.archives import open_dataset
from domains.remote_sensing.scene_dataset import SceneDataset
from domains.remote_sensing.scene_io import SceneError
from domains.remote_sensing.transforms import normaliser


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
        dataset_index: Row of each scene in its dataset (for pictures), found by id.
        cloud_fraction: (N,) fraction of each scene under cloud (NaN where unknown).
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
    cloud_fraction: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.cloud_fraction is None:
            self.cloud_fraction = np.full(len(self.ids), np.nan)

    def select(self, mask: np.ndarray) -> EmbeddedScenes:
        """The subset of scenes where ``mask`` is true."""
        index = np.flatnonzero(mask)
        t = torch.from_numpy(index)
        return EmbeddedScenes(
            self.sensor, self.features[t], None if self.location is None else self.location[t],
            self.labels[t], self.dominant[t], self.coords[t], [self.ids[i] for i in index],
            [self.pair_ids[i] for i in index], self.dataset_index[index],
            self.cloud_fraction[index])


@dataclass
class EvalData:
    """Where a model's evaluation scenes come from: an archive, its layout, bands and size.

    Attributes:
        root: Archive folder.
        layout: Its layout (see :data:`~domains.remote_sensing.archives.LAYOUTS`).
        bands: Sensor -> band order of the model.
        image_size: The model's input side (``None``: the archive's own).
        batch_size: Scenes per forward pass.
        num_workers: DataLoader worker processes.
        preload: Read and check every scene when opening (``None``: the loader's default).
        pre: Sensor -> a transform applied before normalisation (in physical units).
    """

    root: Path
    layout: str
    bands: dict[str, list[str]]
    image_size: int | None = None
    batch_size: int = 64
    num_workers: int = 0
    preload: bool | None = None
    pre: dict[str, Callable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._datasets: dict[tuple[str, str], SceneDataset] = {}

    def dataset(self, sensor: str, split: str) -> SceneDataset:
        """One sensor's split, normalised and resized as in training (cached)."""
        key = (sensor, split)
        if key not in self._datasets:
            resize = ResizeImage(self.image_size) if self.image_size else None
            transforms = Compose(self.pre.get(sensor), normaliser(sensor, self.bands[sensor]),
                                 resize)
            self._datasets[key] = open_dataset(self.root, self.layout, sensor, split,
                                               self.bands[sensor], transforms,
                                               preload=self.preload)
        return self._datasets[key]

    def loader(self, sensor: str, split: str) -> DataLoader:
        """A plain, ordered loader over one sensor's split."""
        return DataLoader(self.dataset(sensor, split), batch_size=self.batch_size,
                          shuffle=False, num_workers=self.num_workers)

    def bad_samples(self) -> list[tuple[str, str]]:
        """Every file skipped so far, with its problem."""
        return [bad for dataset in self._datasets.values() for bad in dataset.bad_samples]


def dominant_class(fractions: torch.Tensor, label_names: str) -> int:
    """The land-cover class covering the most area: -1 when unknown.

    From the area fractions when the sample has them; otherwise the first land-cover
    label in the sample's label order, which loaders sort by area where the files tell it.
    """
    classes = cards.land_cover_classes()
    if fractions.numel() and bool(torch.isfinite(fractions).all()):
        return int(fractions.argmax())
    known = [classes.index(n) for n in label_names.split("; ") if n in classes]
    return known[0] if known else -1


def embed_scenes(model: ContrastiveModel, data: EvalData, sensor: str,
                 split: str = "test") -> EmbeddedScenes:
    """Embed every scene of one sensor and split.

    Args:
        model: Trained model with a tower named after the sensor.
        data: Provides the (normalised) scenes.
        sensor: ``"s2"`` or ``"s1"``.
        split: Which split.

    Returns:
        The embedded scenes.
    """
    found = embed_batches(model, data.loader(sensor, split),
                          {sensor: "image", "location": "coords"},
                          keep=("label", "coords", "id", "pair_id", "fractions", "label_names"))
    # Joined by scene id, never by position: a bad scene the loader replaced by the next
    # readable one arrives twice under that one's id and is scored once.
    first = {scene: i for i, scene in reversed(list(enumerate(found["id"])))}
    keep = torch.tensor(sorted(first.values()), dtype=torch.long)
    if len(keep) == 0:
        raise SceneError(f"no readable {sensor} scene in the {split} split of {data.root}")
    ids = [found["id"][i] for i in keep.tolist()]
    dataset = data.dataset(sensor, split)
    rows = {scene: row for row, scene in enumerate(dataset.sample_ids())}
    dominant = torch.tensor([dominant_class(found["fractions"][i], found["label_names"][i])
                             for i in keep.tolist()])
    location = found.get("location")
    return EmbeddedScenes(sensor, found[sensor][keep],
                          None if location is None else location[keep], found["label"][keep],
                          dominant, found["coords"][keep], ids,
                          [found["pair_id"][i] for i in keep.tolist()],
                          np.asarray([rows[scene] for scene in ids]),
                          cloud_fractions(dataset, [rows[scene] for scene in ids]))


def cloud_fractions(dataset: SceneDataset, rows: Sequence[int]) -> np.ndarray:
    """The ``cloud_fraction`` column of the dataset's table at ``rows`` (NaN without one)."""
    metadata = getattr(dataset, "metadata", None)
    if metadata is None or "cloud_fraction" not in metadata.columns:
        return np.full(len(rows), np.nan)
    column = pd.to_numeric(metadata["cloud_fraction"], errors="coerce").to_numpy(float)
    return column[np.asarray(rows, dtype=int)] if len(rows) else np.zeros(0)


def embed_available(model: ContrastiveModel, data: EvalData,
                    sensors: Sequence[str], split: str = "test") -> dict[str, EmbeddedScenes]:
    """Embed each sensor's scenes of a split, leaving out (with a warning) sensors it lacks.

    Args:
        model: Trained model.
        data: Provides the scenes.
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
            scenes[sensor] = embed_scenes(model, data, sensor, split)
        except SceneError as error:
            problems.append(str(error))
            warnings.warn(f"{error}; its {sensor} metrics are left out", stacklevel=2)
    if not scenes:
        raise SceneError("; ".join(problems))
    return scenes
