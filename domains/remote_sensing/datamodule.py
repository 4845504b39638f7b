"""LightningDataModule for CLOSP: S1 and S2 mini-batches together in every training step.

``train_dataloader`` yields ``{"s2": batch, "s1": batch}`` (Lightning's CombinedLoader,
``max_size_cycle``); each batch is a TorchGeo-style dict: ``image`` (B, C, H, W)
standardised, ``label`` (B, 12) multi-hot over the 9 Dynamic World classes + 3 crisis
tags, ``caption`` (list of B str), ``coords`` (B, 2) as (lon, lat), ``sensor``, ``path``,
``id``. The module owns normalisation (S2: / 10000 then per-band mean/std; S1 dB:
VV -12.59/5.26, VH -20.26/5.91) and applies flips / 90-degree rotations to training scenes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from domains.remote_sensing import cards
from domains.remote_sensing.bigearthnet import BigEarthNetV2
from domains.remote_sensing.crisislandmark import CrisisLandMark
from domains.remote_sensing.scene_folder import METADATA_NAMES, SceneFolder
from domains.remote_sensing.sen12ms import SEN12MS
from domains.remote_sensing.transforms import (
    AreaWeightedCaptions,
    Compose,
    NormalizeBands,
    RandomFlipRotate,
)

LAYOUTS = ("synthetic", "folder", "crisislandmark", "bigearthnet", "sen12ms")
#: Loaders of the real archives' own layouts (see docs/remote_sensing_data.md).
ARCHIVE_LOADERS: dict[str, type] = {"crisislandmark": CrisisLandMark,
                                    "bigearthnet": BigEarthNetV2, "sen12ms": SEN12MS}


def detect_layout(root: str | Path) -> str:
    """The layout of an archive folder, from the files its loader needs.

    Raises:
        FileNotFoundError: Naming the folder when it matches no known layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: archive folder not found")
    if (root / cards.card("crisislandmark")["h5_file"]).is_file():
        return "crisislandmark"
    if any((root / f).is_dir() for f in cards.card("bigearthnet")["folders"].values()):
        return "bigearthnet"
    if any(root.glob("*_list.txt")):
        return "sen12ms"
    if any((root / name).is_file() for name in METADATA_NAMES):
        return "folder"
    raise FileNotFoundError(f"{root}: not a known archive layout (no metadata table, "
                            f"crisislandmark.h5, BigEarthNet-S1/S2 or SEN12MS split lists); "
                            f"pass the layout explicitly, one of {', '.join(LAYOUTS)}")


def sensor_bands(extra: dict[str, Any]) -> dict[str, list[str]]:
    """Band order per sensor from a model config's ``extra.sensors`` (card order if absent).

    Args:
        extra: The model config's ``extra`` mapping.

    Returns:
        ``{"s2": [...], "s1": [...]}``.
    """
    sensors = extra.get("sensors", {})
    return {"s2": list(sensors.get("s2", {}).get("bands") or cards.s2_bands("L1C")),
            "s1": list(sensors.get("s1", {}).get("bands") or cards.s1_bands())}


class ResizeImage:
    """Resize ``sample["image"]`` to ``size`` x ``size`` (bilinear, antialiased when shrinking).

    Applied after normalisation, so nodata (already 0) does not spread.

    Args:
        size: Output side in pixels.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image resized."""
        image = sample["image"]  # (C, H, W)
        if tuple(image.shape[-2:]) == (self.size, self.size):
            return sample
        shrink = image.shape[-1] > self.size or image.shape[-2] > self.size
        resized = torch.nn.functional.interpolate(
            image[None].float(), size=(self.size, self.size), mode="bilinear",
            align_corners=False, antialias=shrink)[0]  # (C, size, size)
        return {**sample, "image": resized}


def normaliser(sensor: str, bands: Sequence[str]) -> NormalizeBands:
    """The standardisation transform of a sensor's bands (statistics from the cards)."""
    mean, std = cards.normalisation(sensor, list(bands))
    return NormalizeBands(mean, std, scale=10000.0 if sensor == "s2" else 1.0)


def open_dataset(root: str | Path, layout: str, sensor: str, split: str | None,
                 bands: Sequence[str] | None = None, transforms: Any = None,
                 strict: bool = False, preload: bool | None = None) -> Dataset:
    """Open one sensor's scenes of an archive in any supported layout.

    Args:
        root: Archive folder.
        layout: One of :data:`LAYOUTS`.
        sensor: ``"s2"`` or ``"s1"``.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for all.
        bands: Band subset.
        transforms: Dictionary transform.
        strict: Raise on bad files instead of skipping them.
        preload: Read and check every scene when opening (``None``: the loader's default —
            yes for scene folders, no for the large real archives).

    Returns:
        A dataset of sample dicts.
    """
    options = {} if preload is None else {"preload": preload}
    if layout in ("synthetic", "folder"):
        return SceneFolder(root, sensor=sensor, split=split, bands=bands, transforms=transforms,
                           strict=strict, **options)
    if layout in ARCHIVE_LOADERS:
        return ARCHIVE_LOADERS[layout](root, sensor=sensor, split=split, bands=bands,
                                       transforms=transforms, strict=strict, **options)
    raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")


class CLOSPDataModule(L.LightningDataModule):
    """Sentinel-1 and Sentinel-2 scenes for contrastive training and evaluation.

    Args:
        root: Archive folder (``None``: the default synthetic archive, generated once).
        layout: On-disk layout (see :data:`LAYOUTS`).
        sensors: Sensors to load (``("s2",)`` for an S2-only model, ``("s1",)`` for S1 alone).
        s2_bands: Sentinel-2 bands to use (default: all 13; ``["B04", "B03", "B02"]`` for RGB).
        batch_size: Scenes per sensor mini-batch.
        num_workers: DataLoader worker processes.
        augment: Random flips / rotations on training scenes.
        caption_augment: Probability of area-weighted caption rewriting on training scenes
            (see :class:`AreaWeightedCaptions`; 0 disables it).
        seed: Seed of the augmentation.
        strict: Raise on bad files instead of skipping them.
        s1_bands: Sentinel-1 bands (default: VV, VH). :func:`sensor_bands` reads both band
            orders from a model config.
        image_size: Resize every scene to this side after normalisation (``None``: keep the
            archive's size — real archives differ: BigEarthNet 120, SEN12MS 256 px).
        preload: Read and check every scene when a dataset is opened (``None``: the
            loader's default).
    """

    def __init__(
        self, root: str | Path | None = None, layout: str = "synthetic",
        sensors: Sequence[str] = ("s2", "s1"), s2_bands: Sequence[str] | None = None,
        batch_size: int = 64, num_workers: int = 0, augment: bool = True, seed: int = 0,
        strict: bool = False, caption_augment: float = 0.5,
        s1_bands: Sequence[str] | None = None, image_size: int | None = None,
        preload: bool | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root) if root is not None else None
        self.layout = layout
        self.sensors = list(sensors)
        self.bands = {"s2": list(s2_bands or cards.s2_bands("L1C")),
                      "s1": list(s1_bands or cards.s1_bands())}
        self.image_size = image_size
        self.preload = preload
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augment = augment
        self.caption_augment = caption_augment
        self.seed = seed
        self.strict = strict
        self._datasets: dict[tuple[str, str], Dataset] = {}

    def prepare_data(self) -> None:
        """Generate the default synthetic archive if no root was given."""
        if self.root is None:
            from domains.remote_sensing.synthetic import default_archive

            self.root = default_archive()

    def dataset(self, sensor: str, split: str) -> Dataset:
        """The (cached) dataset of one sensor and split, normalised; augmented if training."""
        key = (sensor, split)
        if key not in self._datasets:
            if self.root is None:
                self.prepare_data()
            train = split == "train"
            flips = RandomFlipRotate(self.seed) if train and self.augment else None
            captions = AreaWeightedCaptions(self.caption_augment, seed=self.seed) \
                if train and self.caption_augment > 0 else None
            resize = ResizeImage(self.image_size) if self.image_size else None
            transforms = Compose(normaliser(sensor, self.bands[sensor]), resize, flips, captions)
            self._datasets[key] = open_dataset(self.root, self.layout, sensor, split,
                                               self.bands[sensor], transforms, self.strict,
                                               self.preload)
        return self._datasets[key]

    def _loader(self, sensor: str, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.dataset(sensor, split), batch_size=self.batch_size,
                          shuffle=shuffle, num_workers=self.num_workers,
                          drop_last=shuffle, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> CombinedLoader:
        """One mini-batch per sensor in every step (the shorter loader cycles)."""
        loaders = {s: self._loader(s, "train", shuffle=True) for s in self.sensors}
        return CombinedLoader(loaders, mode="max_size_cycle")

    def val_dataloader(self) -> CombinedLoader:
        """Validation mini-batches per sensor, combined like training."""
        loaders = {s: self._loader(s, "val", shuffle=False) for s in self.sensors}
        return CombinedLoader(loaders, mode="max_size_cycle")

    def test_loader(self, sensor: str, split: str = "test") -> DataLoader:
        """A plain loader over one sensor's scenes (for embedding and evaluation)."""
        return self._loader(sensor, split, shuffle=False)

    def bad_samples(self) -> list[tuple[str, str]]:
        """Every file skipped so far, with its problem."""
        found: list[tuple[str, str]] = []
        for dataset in self._datasets.values():
            found.extend(getattr(dataset, "bad_samples", []))
        return found
