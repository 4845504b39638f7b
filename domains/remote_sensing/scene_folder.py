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

from domains.remote_sensing.scene_dataset import SceneDataset
from domains.remote_sensing.scene_io import read_scene

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


class SceneFolder(SceneDataset):
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
        super().__init__(sensor, bands, transforms, strict)
        frame = read_metadata(self.root)
        if "sensor" in frame.columns:
            frame = frame[frame["sensor"] == sensor]
        if split is not None and "split" in frame.columns:
            frame = frame[frame["split"] == split]
        frame = frame[[self._caption_ok(row) for row in frame.itertuples()]]
        self.metadata = frame.reset_index(drop=True)
        if preload:
            self._preload()

    def _caption_ok(self, row: Any) -> bool:
        caption = getattr(row, "caption", None)
        if isinstance(caption, str) and caption.strip():
            return True
        self._bad(str(self.root / str(row.path)), "missing caption")
        return False

    def _path(self, index: int) -> str:
        return str(self.root / str(self.metadata.iloc[index]["path"]))

    def _read(self, index: int) -> np.ndarray:
        return read_scene(self.root / str(self.metadata.iloc[index]["path"]), self.sensor,
                          self.bands)
