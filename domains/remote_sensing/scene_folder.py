"""A folder of GeoTIFF scenes plus a metadata table: the synthetic archive and users' own.

The metadata table (``metadata.parquet``, GeoParquet or plain, or a CSV) has one row
per file with at least ``path`` (relative to the folder) and ``caption``; optional
columns: ``id``, ``sensor`` (s1/s2), ``labels`` (a list, or a string joined with
"; "), ``lon``, ``lat``, ``date``, ``split``, and for Sentinel-2 ``processing_level``,
``processing_baseline``, ``radiometric_offset``. Every file goes through the shared input
check (:func:`~domains.remote_sensing.scene_io.read_scene_info`): band order from the
file's band descriptions (else the band count, noted), other sensors refused, S2 read as
reflectance with the level and offset from the row or the file's tags, S1 as dB. What was
converted or assumed is in each sample's ``input_notes`` and counted in
:attr:`SceneFolder.input_notes`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from domains.remote_sensing import inputs
from domains.remote_sensing.scene_dataset import SceneDataset
from domains.remote_sensing.scene_io import read_scene_info

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


def _table_level(root: Path, frame: pd.DataFrame) -> str | None:
    """The one Sentinel-2 level of a table's ``processing_level`` column, else ``None``."""
    if "processing_level" not in frame.columns:
        return None
    levels = {inputs.s2_level(str(root), level=str(v)) for v in frame["processing_level"]
              if inputs._present(v)}
    return levels.pop() if len(levels) == 1 else None


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
        level: The Sentinel-2 level of every scene when the ``processing_level`` column
            names one (recorded by training), else ``None`` (each scene says its own).
        input_notes: How many scenes read in this process had each note (S1 units converted,
            band order assumed, ...); see :attr:`~domains.remote_sensing.scene_io.SceneInfo.notes`.
    """

    def __init__(
        self, root: str | Path, sensor: str = "s2", split: str | None = "train",
        bands: Sequence[str] | None = None, transforms: Callable | None = None,
        strict: bool = False, preload: bool = True,
    ) -> None:
        self.root = Path(root)
        self.input_notes: Counter[str] = Counter()
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
        self.level = _table_level(self.root, self.metadata) if sensor == "s2" else None
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

    def _read(self, index: int) -> dict[str, Any]:
        row = self.metadata.iloc[index]
        image, info = read_scene_info(self.root / str(row["path"]), self.sensor, self.bands,
                                      metadata=row.to_dict())
        self.input_notes.update(info.notes)
        found: dict[str, Any] = {"image": image, "input_notes": "; ".join(info.notes)}
        if info.level is not None:
            found["level"] = info.level
        return found
