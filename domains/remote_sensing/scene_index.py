"""Text search over an indexed satellite-scene archive, filters applied before ranking.

>>> from domains.remote_sensing import SceneIndex
>>> hits = SceneIndex.load("indexes/default").search("flooded area", k=5, sensor="s1")

An index folder is written by ``python -m domains.remote_sensing.index build``. Filters
(sensor, footprint intersecting a lon/lat box, acquisition date range) select rows first
and ranking happens among them, so ``k`` results come back whenever ``k`` scenes match.
A GeoCLOSP index also fuses a query place (``near``): the score adds ``w`` x the
similarity of the place's and the scene's location embeddings, ``w`` being the weight the
run chose on its validation split (or 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import torch
from shapely.geometry import box

from core.plots import GalleryItem, plot_gallery
from core.retrieval import EmbeddingIndex, IndexLoadError
from domains.remote_sensing.archives import open_dataset
from domains.remote_sensing.index import INDEX_TYPE
from domains.remote_sensing.render import render_scene
from domains.remote_sensing.run_model import SceneRun

SENSOR_CHOICES = ("s2", "s1", "any")
EARTH_RADIUS_KM = 6371.0088


def parse_bbox(value: str | Sequence[float]) -> tuple[float, float, float, float]:
    """A (west, south, east, north) box in degrees from ``"W,S,E,N"`` or a sequence.

    West may exceed east for a box crossing the antimeridian.

    Raises:
        ValueError: Naming the problem (count, order, range).
    """
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        west, south, east, north = (float(p) for p in parts)
    except (TypeError, ValueError) as error:
        raise ValueError(f"bbox must be W,S,E,N (four numbers in degrees), got {value!r}") \
            from error
    if not (-90 <= south <= north <= 90):
        raise ValueError(f"bbox {value!r}: need -90 <= south <= north <= 90")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise ValueError(f"bbox {value!r}: longitudes must lie in [-180, 180]")
    return west, south, east, north


def parse_point(value: str | Sequence[float]) -> tuple[float, float]:
    """A (lon, lat) point in degrees from ``"LON,LAT"`` or a sequence."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        lon, lat = (float(p) for p in parts)
    except (TypeError, ValueError) as error:
        raise ValueError(f"a place must be LON,LAT in degrees, got {value!r}") from error
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"place {value!r} is outside lon [-180, 180], lat [-90, 90]")
    return lon, lat


def parse_date_range(value: str | Sequence[Any]) -> tuple[np.datetime64 | None,
                                                          np.datetime64 | None]:
    """Inclusive (from, to) days from ``"FROM..TO"`` (either side may be empty) or a pair.

    Raises:
        ValueError: For an unparseable date or a range that ends before it starts.
    """
    parts = value.split("..") if isinstance(value, str) else list(value)
    if isinstance(value, str) and len(parts) == 1:
        parts = [parts[0], parts[0]]  # one day
    if len(parts) != 2:
        raise ValueError(f"a date range is FROM..TO (e.g. 2021-06-01..2021-08-31), got {value!r}")
    ends = []
    for part in parts:
        text = "" if part is None else str(part).strip()
        try:
            ends.append(np.datetime64(pd.Timestamp(text).date(), "D") if text else None)
        except ValueError as error:
            raise ValueError(f"date range {value!r}: cannot read date {text!r}") from error
    if ends[0] is not None and ends[1] is not None and ends[1] < ends[0]:
        raise ValueError(f"date range {value!r} ends before it starts")
    return ends[0], ends[1]


def haversine_km(lon: np.ndarray, lat: np.ndarray, place: tuple[float, float]) -> np.ndarray:
    """Great-circle distance in km from each (lon, lat) to ``place``."""
    lon1, lat1, lon2, lat2 = map(np.radians, (lon, lat, place[0], place[1]))
    a = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


class SceneIndex:
    """An indexed archive: search by text with sensor, place and date filters.

    Args:
        index: The loaded embedding index (built by ``domains.remote_sensing.index``).
        folder: Its folder.
        run: Run folder to embed queries with (default: the one that built the index).
        archive: Archive folder for pictures (default: the one indexed).
        device: Where the text tower runs.
    """

    def __init__(self, index: EmbeddingIndex, folder: Path, run: str | Path | None = None,
                 archive: str | Path | None = None, device: str = "cpu") -> None:
        info = index.info
        if info.get("type") != INDEX_TYPE:
            raise IndexLoadError(f"{folder}: not a scene index (build one with "
                                 f"python -m domains.remote_sensing.index build)")
        self.index, self.folder, self.info, self.device = index, folder, info, device
        self.run_folder = Path(run) if run is not None else Path(info["run"])
        self.archive = Path(archive) if archive is not None else Path(info["archive"])
        self._run: SceneRun | None = None
        self._datasets: dict[str, Any] = {}
        metadata = index.metadata
        self._sensor = metadata["sensor"].to_numpy()
        self._bounds = metadata.geometry.bounds.to_numpy()  # (N, 4) west, south, east, north
        self._dates = pd.to_datetime(metadata["date"], errors="coerce").to_numpy("datetime64[D]")

    @classmethod
    def load(cls, folder: str | Path, run: str | Path | None = None,
             archive: str | Path | None = None, device: str = "cpu") -> SceneIndex:
        """Load an index folder, refusing a partial or damaged one.

        Args:
            folder: The index folder.
            run: Run folder to embed queries with (default: the one recorded at build time;
                it must hold the same weights).
            archive: Archive folder for pictures (default: the one recorded).
            device: Where the text tower runs.

        Raises:
            IndexLoadError: The folder is not a complete, intact scene index.
        """
        folder = Path(folder)
        return cls(EmbeddingIndex.load(folder), folder, run, archive, device)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def metadata(self) -> gpd.GeoDataFrame:
        """One row per scene: id, path, sensor, lon, lat, date, labels, caption, footprint."""
        return self.index.metadata

    @property
    def run(self) -> SceneRun:
        """The model that embeds queries (loaded on first use, checked against the index)."""
        if self._run is None:
            loaded = SceneRun.load(self.run_folder, self.info.get("variant", "main"),
                                    self.device)
            if loaded.fingerprint != self.info["run_fingerprint"]:
                raise ValueError(f"{loaded.folder}: these weights differ from the ones that "
                                 f"built {self.folder}; rebuild the index or pass the run "
                                 f"that built it")
            self._run = loaded
        return self._run

    def describe(self) -> dict[str, Any]:
        """What the index holds and how it was built (for ``index info``)."""
        return {**self.info, "count": len(self), "built": self.index.built,
                "folder": str(self.folder)}

    def filter_mask(self, sensor: str | None = None, bbox: Any = None,
                    date: Any = None) -> np.ndarray | None:
        """Rows passing every filter given (``None`` when there is no filter).

        Args:
            sensor: ``"s2"``, ``"s1"`` or ``"any"``/``None``.
            bbox: (west, south, east, north) or ``"W,S,E,N"``: footprint intersects it.
            date: ``"FROM..TO"`` or a (from, to) pair, inclusive, either side open.

        Returns:
            (N,) boolean mask, or ``None``.
        """
        mask = np.ones(len(self), dtype=bool)
        if sensor not in (None, "any"):
            if sensor not in SENSOR_CHOICES:
                raise ValueError(f"unknown sensor {sensor!r}; known: {', '.join(SENSOR_CHOICES)}")
            mask &= self._sensor == sensor
        if bbox is not None:
            mask &= self._in_box(parse_bbox(bbox))
        if date is not None:
            start, end = parse_date_range(date)
            known = ~np.isnat(self._dates)
            if start is not None:
                known &= self._dates >= start
            if end is not None:
                known &= self._dates <= end
            mask &= known
        return None if sensor in (None, "any") and bbox is None and date is None else mask

    def _in_box(self, bbox: tuple[float, float, float, float]) -> np.ndarray:
        """Footprints intersecting a lon/lat box (split in two across the antimeridian).

        Rows whose footprint bounds miss the box are dropped by a vectorised test; shapely
        decides among the rest. A footprint cut at the antimeridian (a MultiPolygon with a
        part on each side of 180°) has total bounds spanning -180..180, so it is always a
        candidate by longitude and shapely tests its parts exactly; other footprints are
        tested against their own bounds. Rows without a footprint never match.

        Args:
            bbox: (west, south, east, north) in degrees; west > east crosses 180°.

        Returns:
            (N,) boolean mask.
        """
        west, south, east, north = bbox
        boxes = [(west, south, east, north)] if west <= east else \
            [(west, south, 180.0, north), (-180.0, south, east, north)]
        minx, miny, maxx, maxy = self._bounds.T  # (N,) each; NaN without a footprint
        result = np.zeros(len(self), dtype=bool)
        geometry = self.metadata.geometry.to_numpy()  # (N,) shapely geometries
        for w, s, e, n in boxes:
            candidates = np.flatnonzero((minx <= e) & (maxx >= w) & (miny <= n) & (maxy >= s)
                                        & ~result)
            hits = shapely.intersects(geometry[candidates], box(w, s, e, n))
            result[candidates[hits]] = True
        return result

    def search(self, text: str, k: int = 10, *, sensor: str | None = None, bbox: Any = None,
               date: Any = None, near: Any = None,
               near_weight: float | None = None) -> gpd.GeoDataFrame:
        """The k scenes best matching a text query among those passing the filters.

        Args:
            text: The query ("flooded farmland near a river").
            k: Results wanted.
            sensor: ``"s2"``, ``"s1"`` or ``"any"``/``None``.
            bbox: (west, south, east, north) or ``"W,S,E,N"``: footprint intersects it.
            date: ``"FROM..TO"`` or a (from, to) pair of ISO dates, inclusive.
            near: (lon, lat) or ``"LON,LAT"``: fuse the place (GeoCLOSP indexes only).
            near_weight: Weight of the place term (default: the run's validation choice).

        Returns:
            A GeoDataFrame (footprints, EPSG:4326) ranked best first: rank, id, sensor,
            lon, lat, date, score, labels, caption, path, input_notes (what the input
            check converted or assumed when the scene was indexed: S1 units, band order;
            "" when nothing) and distance_km with ``near``.
            Fewer than k rows only when fewer than k scenes pass the filters;
            ``attrs["matching"]`` says how many passed.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the query must be a non-empty string")
        query = self.run.embed_text([text])[0]  # (D,)
        place = None
        if near is not None:
            if not self.info.get("location"):
                raise ValueError(f"{self.folder}: near= fuses a place and needs a GeoCLOSP "
                                 f"index; this one was built with {self.info.get('model')} "
                                 f"(no location tower) — filter by place with bbox= instead")
            place = parse_point(near)
        return self.search_vector(query, k, self.filter_mask(sensor, bbox, date), place,
                                  near_weight)

    def search_vector(self, query: torch.Tensor | np.ndarray, k: int,
                      mask: np.ndarray | None = None, place: tuple[float, float] | None = None,
                      near_weight: float | None = None) -> gpd.GeoDataFrame:
        """Rank scenes against an already embedded (D,) query; see :meth:`search`."""
        query = torch.as_tensor(np.asarray(query, dtype=np.float32)).flatten()  # (D,)
        if self.info.get("location"):
            location = torch.zeros_like(query)
            if place is not None:
                weight = near_weight if near_weight is not None else \
                    (self.info.get("proximity_weight") or 1.0)
                location = float(weight) * self.run.embed_location(np.asarray([place]))[0]
            query = torch.cat([query, location])  # (2D,)
        scores, ids = self.index.search(query.numpy(), k, mask=mask)
        found = ids[0] >= 0
        rows = ids[0][found]
        table = self.metadata.iloc[rows].copy()
        table.insert(0, "rank", np.arange(1, len(rows) + 1))
        table["score"] = scores[0][found]
        if place is not None:
            table["distance_km"] = haversine_km(table["lon"].to_numpy(),
                                                table["lat"].to_numpy(), place)
        if "input_notes" not in table.columns:  # an index built before input notes
            table["input_notes"] = ""
        columns = ["rank", "id", "sensor", "lon", "lat", "date", "score",
                   *(["distance_km"] if place is not None else []), "labels", "caption",
                   "path", "row", "input_notes", "geometry"]
        results = gpd.GeoDataFrame(table[columns].reset_index(drop=True), geometry="geometry",
                                   crs=self.metadata.crs)
        results.attrs["matching"] = len(self) if mask is None else int(mask.sum())
        return results

    def picture(self, hit: pd.Series) -> np.ndarray:
        """An RGB picture (H, W, 3) of one result row (S2 false colour, S1 composite)."""
        sensor = str(hit["sensor"])
        if sensor not in self._datasets:
            if not self.archive.is_dir():
                raise FileNotFoundError(f"{self.archive}: indexed archive not found; pass "
                                        f"archive= (or --archive) where it lives now")
            bands = self.info["bands"][sensor]
            self._datasets[sensor] = open_dataset(self.archive, self.info["layout"], sensor,
                                                  self.info.get("split"), bands, None,
                                                  False, False)
        sample = self._datasets[sensor].read_sample(int(hit["row"]))
        return render_scene(sample["image"], sensor, self.info["bands"][sensor])

    def gallery(self, query: str, results: pd.DataFrame, path: str | Path) -> Path:
        """Write a PNG of the results' pictures, ranked left to right.

        Args:
            query: The query text (row label).
            results: What :meth:`search` returned.
            path: Output PNG.

        Returns:
            The PNG path.
        """
        items = [GalleryItem(self.picture(hit), f"{hit['rank']}. {hit['sensor']} {hit['id']}\n"
                             f"{hit['date']}  score {hit['score']:.3f}", None)
                 for _, hit in results.iterrows()]
        return plot_gallery([(query, items)], path)
