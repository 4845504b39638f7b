"""The base of every scene loader: Sentinel-1/2 sample dicts, labels, captions, plots.

Built on :class:`core.data.SampleDataset`, which owns the bad-input policy (skip and
count, substitute, ``strict=True``, counting in DataLoader workers). A loader lists its
scenes in ``self.metadata`` (one row per scene, columns ``path``, ``id``, ``labels`` —
vocabulary names, ordered — and optionally ``caption``, ``lon``, ``lat``, ``date``,
``pair_id``, ``frac_<class>``, ``region``, ``biome``) and implements
:meth:`SceneDataset._read`, which returns the image and whatever it learns from the
file (coordinates, area fractions). This module adds what is about satellites: the
sensor and its bands, the multi-hot label over the Dynamic World classes + crisis tags,
the caption, the area fractions, what the caption styles of training use (``date``,
``region``, ``biome``; "" where unknown) and ``plot``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import torch
from torchgeo.datasets import NonGeoDataset

from core.data import BadSampleLog, SampleDataset, float_or_nan, labels_of, multi_hot
from domains.remote_sensing import cards
from domains.remote_sensing.scene_io import SceneError

#: Errors that make one scene bad (never the whole dataset).
READ_ERRORS = (SceneError, rasterio.errors.RasterioError)


class SceneDataset(SampleDataset, NonGeoDataset):
    """Scenes of one sensor; subclasses fill ``self.metadata`` and implement ``_read``.

    Args:
        sensor: ``"s2"`` or ``"s1"``.
        bands: Bands to return, by name, in this order (default: all of the sensor's bands,
            Sentinel-2 as B01..B12 with B8A and B10).
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad file instead of skipping it.
        bad_sample_log: A log shared with DataLoader workers (see :mod:`core.data`).

    Attributes:
        bad_samples: ``(path, problem)`` of every skipped file.
        metadata: One row per sample.
    """

    read_errors = READ_ERRORS
    #: Sentinel-2 processing level of every scene ("L1C" / "L2A") when the archive fixes it;
    #: a reader that finds the level per scene returns it as ``found["level"]`` instead.
    level: str | None = None

    def __init__(self, sensor: str, bands: Sequence[str] | None = None,
                 transforms: Callable | None = None, strict: bool = False,
                 bad_sample_log: BadSampleLog | None = None) -> None:
        super().__init__(transforms, strict, bad_sample_log)
        if sensor not in ("s2", "s1"):
            raise ValueError(f"unknown sensor {sensor!r}; known: s2, s1")
        self.sensor = sensor
        self.all_bands = cards.s2_bands("L1C") if sensor == "s2" else cards.s1_bands()
        self.bands = list(bands or self.all_bands)
        unknown = [b for b in self.bands if b not in self.all_bands]
        if unknown:
            raise ValueError(f"unknown {sensor} bands {unknown}; known: {self.all_bands}")
        self.vocabulary = cards.label_vocabulary()

    def _drop_unlabelled(self) -> None:
        """Count rows whose labels have no counterpart in the vocabulary as missing captions."""
        self._drop_rows([bool(labels) for labels in self.metadata["labels"]],
                        "missing caption: no label maps to the vocabulary")

    def label_vector(self, labels: Sequence[str]) -> torch.Tensor:
        """Multi-hot vector over :func:`cards.label_vocabulary` (unknown labels ignored)."""
        return multi_hot(labels, self.vocabulary)

    def _sample(self, index: int, read: np.ndarray | dict[str, Any]) -> dict[str, Any]:
        """The sample dict: image (C, H, W) float32 (NaN where nodata), label, caption...

        S2 samples carry ``level`` when known (the reader's, else :attr:`level`), which
        the normaliser uses; every sample carries ``input_notes`` (what the input check
        converted or assumed, "" when nothing).
        """
        found = read if isinstance(read, dict) else {"image": read}
        row = self.metadata.iloc[index]
        labels = list(found.get("labels") or labels_of(row.get("labels")))
        coords = found.get("coords")
        if coords is None or not np.isfinite(coords).all():
            coords = (float_or_nan(row.get("lon")), float_or_nan(row.get("lat")))
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
            "pair_id": _text(row.get("pair_id")),
        }
        # What the caption styles use where the archive has it ("" where unknown).
        date = found.get("date") or row.get("date")
        sample["date"] = "" if date is None or pd.isna(date) else str(date)
        sample["region"], sample["biome"] = _text(row.get("region")), _text(row.get("biome"))
        level = found.get("level") or self.level
        if self.sensor == "s2" and level:
            sample["level"] = str(level)  # picks the normalisation statistics
        sample["input_notes"] = str(found.get("input_notes", ""))
        return sample

    def sample_ids(self) -> list[str]:
        """The ``id`` each row's sample carries, in row order."""
        return [str(row.get("id", row["path"])) for _, row in self.metadata.iterrows()]

    def _fractions(self, row: pd.Series) -> torch.Tensor:
        """Area fraction of each land-cover class (NaN when the table has none): (9,)."""
        columns = cards.fraction_columns()
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


def _text(value: object) -> str:
    """A metadata cell as text ("" for None/NaN)."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) \
        else str(value)
