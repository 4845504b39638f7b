"""The shared base of every scene loader: sample dicts, labels, the bad-input policy, plots.

A loader lists its samples in ``self.metadata`` (one row per scene, columns ``path``,
``id``, ``labels`` — vocabulary names, ordered — and optionally ``caption``, ``lon``,
``lat``, ``date``, ``pair_id``, ``frac_<class>``) and implements :meth:`SceneDataset._read`,
which returns the image and whatever it learns from the file (coordinates, area
fractions). Everything else — the multi-hot label, the caption, skipping and counting bad
files, ``plot`` — lives here once.

Bad input: with ``preload=True`` every sample is read and checked at construction and bad
ones are dropped and counted in ``bad_samples`` (file named, problem stated). With
``preload=False`` (large archives) a sample found bad when read is counted the same way,
logged, and replaced by the next readable sample, so an epoch never dies for one file.
``strict=True`` raises :class:`~domains.remote_sensing.scene_io.SceneError` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import torch
from torchgeo.datasets import NonGeoDataset

from domains.remote_sensing import cards
from domains.remote_sensing.scene_io import SceneError

log = logging.getLogger(__name__)

#: Errors that make one sample bad (never the whole dataset).
READ_ERRORS = (SceneError, rasterio.errors.RasterioError)


def fraction_columns() -> list[str]:
    """Metadata columns holding the area fraction of each Dynamic World class."""
    return [f"frac_{c.replace(' ', '_')}" for c in cards.land_cover_classes()]


class SceneDataset(NonGeoDataset):
    """Scenes of one sensor; subclasses fill ``self.metadata`` and implement ``_read``.

    Args:
        sensor: ``"s2"`` or ``"s1"``.
        bands: Bands to return, by name, in this order (default: all of the sensor's bands,
            Sentinel-2 as B01..B12 with B8A and B10).
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad file instead of skipping it.

    Attributes:
        bad_samples: ``(path, problem)`` of every skipped file.
        metadata: One row per sample.
    """

    def __init__(self, sensor: str, bands: Sequence[str] | None = None,
                 transforms: Callable | None = None, strict: bool = False) -> None:
        if sensor not in ("s2", "s1"):
            raise ValueError(f"unknown sensor {sensor!r}; known: s2, s1")
        self.sensor = sensor
        self.all_bands = cards.s2_bands("L1C") if sensor == "s2" else cards.s1_bands()
        self.bands = list(bands or self.all_bands)
        unknown = [b for b in self.bands if b not in self.all_bands]
        if unknown:
            raise ValueError(f"unknown {sensor} bands {unknown}; known: {self.all_bands}")
        self.vocabulary = cards.label_vocabulary()
        self.transforms = transforms
        self.strict = strict
        self.bad_samples: list[tuple[str, str]] = []
        self.metadata = pd.DataFrame()
        self._images: list[dict[str, Any]] | list[np.ndarray] | None = None
        self._broken: set[int] = set()

    # -- what a subclass provides ------------------------------------------------------------

    def _read(self, index: int) -> np.ndarray | dict[str, Any]:
        """Read sample ``index``: its (C, H, W) float32 image, or a dict with ``image`` and
        optionally ``coords`` (lon, lat), ``fractions`` (9,), ``labels`` (reordered by
        area) and ``date`` found in the files."""
        raise NotImplementedError

    # -- the bad-input policy ----------------------------------------------------------------

    def _bad(self, path: str, problem: str) -> None:
        if self.strict:
            raise SceneError(problem if problem.startswith(path) else f"{path}: {problem}")
        self.bad_samples.append((path, problem))

    def _path(self, index: int) -> str:
        return str(self.metadata.iloc[index]["path"])

    def _preload(self) -> None:
        """Read and check every sample now; drop (and count) the bad ones."""
        images, keep = [], []
        for index in range(len(self.metadata)):
            try:
                images.append(self._read(index))
                keep.append(index)
            except READ_ERRORS as error:
                self._bad(self._path(index), str(error))
        self.metadata = self.metadata.iloc[keep].reset_index(drop=True)
        self._images = images

    def _drop_unlabelled(self) -> None:
        """Count rows whose labels have no counterpart in the vocabulary as missing captions."""
        keep = []
        for index, labels in enumerate(self.metadata["labels"]):
            if labels:
                keep.append(index)
            else:
                self._bad(self._path(index), "missing caption: no label maps to the vocabulary")
        self.metadata = self.metadata.iloc[keep].reset_index(drop=True)

    # -- samples ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.metadata)

    def label_vector(self, labels: Sequence[str]) -> torch.Tensor:
        """Multi-hot vector over :func:`cards.label_vocabulary` (unknown labels ignored)."""
        vector = torch.zeros(len(self.vocabulary))
        for label in labels:
            if label in self.vocabulary:
                vector[self.vocabulary.index(label)] = 1.0
        return vector

    def read_sample(self, index: int) -> dict[str, Any]:
        """Sample ``index`` exactly, never a substitute (for indexing every scene once).

        Raises:
            SceneError: (or a rasterio error, see :data:`READ_ERRORS`) If the scene cannot
                be read; it is not counted in ``bad_samples`` here — the caller decides.
        """
        if self._images is not None:
            return self._sample(index, self._images[index])
        return self._sample(index, self._read(index))

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One sample: image (C, H, W) float32 (NaN where nodata), label, caption, coords..."""
        if self._images is not None:
            return self._sample(index, self._images[index])
        for step in range(len(self)):
            current = (index + step) % len(self)
            if current in self._broken:
                continue
            try:
                return self.read_sample(current)
            except READ_ERRORS as error:
                self._bad(self._path(current), str(error))
                self._broken.add(current)
                log.warning("skipping bad sample: %s", error)
        raise SceneError(f"no readable sample left in {type(self).__name__}")

    def _sample(self, index: int, read: np.ndarray | dict[str, Any]) -> dict[str, Any]:
        found = read if isinstance(read, dict) else {"image": read}
        row = self.metadata.iloc[index]
        labels = list(found.get("labels") or _labels_of(row.get("labels")))
        coords = found.get("coords")
        if coords is None or not np.isfinite(coords).all():
            coords = (_float(row.get("lon")), _float(row.get("lat")))
        fractions = found.get("fractions")
        caption = row.get("caption")
        sample = {
            "image": torch.from_numpy(found["image"]),
            "label": self.label_vector(labels),
            "label_names": "; ".join(labels),
            "fractions": torch.as_tensor(fractions, dtype=torch.float32) if fractions is not None
            else self._fractions(row),
            "caption": str(caption) if isinstance(caption, str) else cards.caption_for(labels),
            "coords": torch.tensor(coords, dtype=torch.float32),
            "sensor": self.sensor,
            "path": self._path(index),
            "id": str(row.get("id", row["path"])),
        }
        if "date" in found:
            sample["date"] = str(found["date"])
        return self.transforms(sample) if self.transforms is not None else sample

    def _fractions(self, row: pd.Series) -> torch.Tensor:
        """Area fraction of each land-cover class (NaN when the table has none): (9,)."""
        columns = fraction_columns()
        if all(c in row.index for c in columns):
            return torch.tensor([float(row[c]) for c in columns], dtype=torch.float32)
        return torch.full((len(columns),), float("nan"))

    def plot(self, sample: dict[str, Any], suptitle: str | None = None) -> Any:
        """Show a sample: S2 in false colour (NIR, red, green), S1 as VV / VH / ratio."""
        import matplotlib.pyplot as plt

        from domains.remote_sensing.render import render_scene

        figure, axis = plt.subplots(figsize=(4, 4.4))
        axis.imshow(render_scene(sample["image"], self.sensor, self.bands))
        axis.set_title(sample.get("caption", ""), fontsize=8)
        axis.axis("off")
        if suptitle:
            figure.suptitle(suptitle)
        return figure


def _float(value: Any) -> float:
    return float(value) if value is not None and pd.notna(value) else float("nan")


def _labels_of(value: Any) -> list[str]:
    """A label list from a list/array, a "; "-joined string, or nothing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    return [str(v) for v in value]
