"""A folder of GeoTIFF scenes plus a metadata table: the synthetic archive and users' own.

The metadata table (``metadata.parquet``, GeoParquet or plain, or a CSV) has one row
per file with at least ``path`` (relative to the folder) and ``caption``; optional
columns: ``id``, ``sensor`` (s1/s2), ``labels`` (a list, or a string joined with
"; "), ``lon``, ``lat``, ``date``, ``split``. Band order is read from the file's band
descriptions, or else taken from the sensor's dataset card.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import torch
from torchgeo.datasets import NonGeoDataset

from domains.remote_sensing import cards
from domains.remote_sensing.scene_io import SceneError, read_scene

METADATA_NAMES = ("metadata.parquet", "metadata.csv", "captions.parquet", "captions.csv")


def read_metadata(root: Path) -> pd.DataFrame:
    """Read the metadata table of a scene folder, naming the file in any error."""
    for name in METADATA_NAMES:
        path = root / name
        if path.is_file():
            try:
                frame = pd.read_csv(path) if path.suffix == ".csv" else _read_parquet(path)
            except Exception as error:
                raise ValueError(f"{path}: cannot read the metadata table: {error}") from error
            missing = {"path", "caption"} - set(frame.columns)
            if missing:
                raise ValueError(f"{path}: missing columns {sorted(missing)}")
            return frame
    raise FileNotFoundError(f"{root}: no metadata table ({', '.join(METADATA_NAMES)}) found")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import geopandas as gpd

        return gpd.read_parquet(path)
    except (ValueError, ImportError):  # a plain parquet without geo metadata
        return pd.read_parquet(path)


def _labels_of(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    return [str(v) for v in value]


class SceneFolder(NonGeoDataset):
    """Scenes of one sensor from a folder of GeoTIFFs and a metadata table.

    Args:
        root: The folder.
        sensor: ``"s2"`` or ``"s1"`` (rows of another sensor are ignored).
        split: Keep rows of this split (``None``: all rows).
        bands: Bands to return, by name (default: all of the sensor's bands).
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad file instead of skipping it.
        preload: Read and check every scene at construction (fast access after).

    Attributes:
        bad_samples: ``(path, problem)`` of every skipped file.
    """

    def __init__(
        self, root: str | Path, sensor: str = "s2", split: str | None = "train",
        bands: Sequence[str] | None = None, transforms: Callable | None = None,
        strict: bool = False, preload: bool = True,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: archive folder not found")
        self.sensor = sensor
        self.all_bands = cards.s2_bands("L1C") if sensor == "s2" else cards.s1_bands()
        self.bands = list(bands or self.all_bands)
        self.vocabulary = cards.label_vocabulary()
        self.transforms = transforms
        self.strict = strict
        frame = read_metadata(self.root)
        if "sensor" in frame.columns:
            frame = frame[frame["sensor"] == sensor]
        if split is not None and "split" in frame.columns:
            frame = frame[frame["split"] == split]
        self.bad_samples: list[tuple[str, str]] = []
        frame = frame[[self._caption_ok(row) for row in frame.itertuples()]]
        self.metadata = frame.reset_index(drop=True)
        self._images: list[np.ndarray] | None = None
        if preload:
            self._preload()

    def _caption_ok(self, row: Any) -> bool:
        caption = getattr(row, "caption", None)
        if isinstance(caption, str) and caption.strip():
            return True
        self._bad(str(self.root / str(row.path)), "missing caption")
        return False

    def _bad(self, path: str, problem: str) -> None:
        if self.strict:
            raise SceneError(f"{path}: {problem}")
        self.bad_samples.append((path, problem))

    def _read(self, index: int) -> np.ndarray:
        return read_scene(self.root / str(self.metadata.iloc[index]["path"]), self.sensor,
                          self.bands)

    def _preload(self) -> None:
        images, keep = [], []
        for index in range(len(self.metadata)):
            try:
                images.append(self._read(index))
                keep.append(index)
            except (SceneError, rasterio.errors.RasterioError) as error:
                self._bad(str(self.root / str(self.metadata.iloc[index]["path"])), str(error))
        self.metadata = self.metadata.iloc[keep].reset_index(drop=True)
        self._images = images

    def __len__(self) -> int:
        return len(self.metadata)

    def label_vector(self, labels: Sequence[str]) -> torch.Tensor:
        """Multi-hot vector over :func:`cards.label_vocabulary` (unknown labels ignored)."""
        vector = torch.zeros(len(self.vocabulary))
        for label in labels:
            if label in self.vocabulary:
                vector[self.vocabulary.index(label)] = 1.0
        return vector

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One sample: image (C, H, W) float32 (NaN where nodata), label, caption, coords..."""
        row = self.metadata.iloc[index]
        image = self._images[index] if self._images is not None else self._read(index)
        lon = float(row["lon"]) if "lon" in row and pd.notna(row["lon"]) else float("nan")
        lat = float(row["lat"]) if "lat" in row and pd.notna(row["lat"]) else float("nan")
        labels = _labels_of(row.get("labels"))
        sample = {
            "image": torch.from_numpy(image),
            "label": self.label_vector(labels),
            "label_names": "; ".join(labels),
            "fractions": self._fractions(row),
            "caption": str(row["caption"]),
            "coords": torch.tensor([lon, lat], dtype=torch.float32),
            "sensor": self.sensor,
            "path": str(self.root / str(row["path"])),
            "id": str(row.get("id", row["path"])),
        }
        return self.transforms(sample) if self.transforms is not None else sample

    def _fractions(self, row: pd.Series) -> torch.Tensor:
        """Area fraction of each land-cover class (NaN when the table has none): (9,)."""
        columns = [f"frac_{c.replace(' ', '_')}" for c in cards.land_cover_classes()]
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
