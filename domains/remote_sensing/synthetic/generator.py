"""Generate the synthetic Sentinel-1/2 archive: GeoTIFF scenes + a GeoParquet of metadata.

Layout of an archive folder::

    s2/<id>.tif            13-band uint16 L1C-like scenes (nodata 0): DN = 10000 x reflectance
                           before 25 January 2022, DN = 10000 x reflectance + 1000 from then
                           on (tags PROCESSING_LEVEL, PROCESSING_BASELINE, RADIO_ADD_OFFSET)
    s2/<id>_scl.tif        its scene classification layer (uint8 Sen2Cor SCL codes: 3 cloud
                           shadow, 8/9 cloud, 10 thin cirrus, 4/5/6/11 clear surface)
    s1/<id>.tif            2-band float32 sigma0 in dB (VV, VH; nodata -9999), speckled at
                           the card's equivalent number of looks (IW GRD: 4.4)
    metadata.parquet       one row per file: footprint, sensor, date, labels, caption, split,
                           processing_level/_baseline, radiometric_offset, cloud_fraction,
                           cloud_shadow_fraction, scl_path
    manifest.json          generator name, parameters and counts; written last, so its
                           presence means complete

Writing never destroys other data: an output folder must be missing, empty or an
earlier archive of this generator (replaced only with ``overwrite``); the archive is
built in a hidden sibling folder and swapped in whole (:func:`core.atomic.atomic_replace_dir`).

S1 and S2 scenes are unpaired (different places), except a smaller paired subset
(same surface seen by both sensors, ``pair_id`` set) kept for cross-sensor evaluation.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write_bytes
from core.generated import (
    UnsafeOutputError,  # noqa: F401  (re-exported by the package)
    cached_generated,
    write_generated,
)
from core.resources import cache_root
from domains.remote_sensing import cards
from domains.remote_sensing.synthetic.clouds import cloud_fractions
from domains.remote_sensing.synthetic.fields import land_cover_map, smooth_noise
from domains.remote_sensing.synthetic.geography import class_logits, place_scene
from domains.remote_sensing.synthetic.physics import (
    Physics,
    digital_numbers,
    render_s1,
    render_s2,
)
from domains.remote_sensing.synthetic.writer import s2_product, scene_footprint, write_geotiff

#: 2: speckle ENL and clouds (SCL layers) from the card, dates straddling 2022 with the
#: post-2022 radiometric offset.
GENERATOR_VERSION = 2
#: The scene classification layer beside each S2 scene: ``s2/<id>_scl.tif``.
SCL_SUFFIX = "_scl.tif"
#: Written into every manifest: how an archive of this generator is recognised.
GENERATOR_NAME = "domains.remote_sensing.synthetic"
_SENSOR_DIRS = ("s2", "s1")
_ARCHIVE_FILES = ("metadata.parquet", "manifest.json")
_SCENE_SUFFIXES = (".tif", ".tif.aux.xml")
_LEGACY_KEYS = frozenset({"n_s2", "n_s1", "n_paired", "seed", "size", "version", "rows"})
MIN_LABEL_FRACTION = 0.05
SPLIT_FRACTIONS = {"train": 0.75, "val": 0.05, "test": 0.20}
CRISIS_AS_LAND_COVER = {"flooded area": "water", "burned area": "bare ground",
                        "earthquake damage": "built area"}


@cache
def _physics() -> Physics:
    return Physics.from_card(cards.card("synthetic"), cards.land_cover_classes(),
                             cards.crisis_tags())


def simulate_surface(rng: np.random.Generator, size: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw one scene's place, land cover and crisis damage.

    Args:
        rng: Random generator of this scene.
        size: Scene side in pixels.

    Returns:
        The (size, size) surface map (class indices, then crisis surfaces) and the
        scene's metadata (place, date, labels ordered by area, fractions, caption).
    """
    card = cards.card("synthetic")
    classes, tags = cards.land_cover_classes(), cards.crisis_tags()
    place = place_scene(rng, card)
    event = card["events"][place.event] if place.event >= 0 else None
    required = {}
    if event is not None:
        required = {name: 1.5 for name in event.get("min_class_fraction", {})}
    logits = class_logits(rng, card["biomes"][place.biome], classes, required)
    surface = land_cover_map(rng, logits, size, corr_px=float(rng.uniform(4.0, 10.0)))
    if event is not None:
        severity = rng.uniform(*event["severity"])
        damage = smooth_noise(rng, (1, size, size), corr_px=5.0)[0]
        affected = np.isin(surface, [classes.index(c) for c in event["affected_classes"]])
        threshold = np.quantile(damage, 1 - severity)
        tag_code = len(classes) + tags.index(event["tag"])
        surface = np.where(affected & (damage >= threshold), tag_code, surface)
    land_cover = surface.copy()
    for tag, cls in CRISIS_AS_LAND_COVER.items():
        land_cover[surface == len(classes) + tags.index(tag)] = classes.index(cls)
    fractions = np.bincount(land_cover.ravel(), minlength=len(classes)) / land_cover.size
    crisis_fraction = {t: float((surface == len(classes) + i).mean()) for i, t in enumerate(tags)}
    order = [c for c in np.argsort(-fractions, kind="stable") if fractions[c] >= MIN_LABEL_FRACTION]
    labels = [classes[c] for c in order]
    crisis = [t for t in tags if crisis_fraction[t] >= MIN_LABEL_FRACTION]
    meta = {
        "lon": place.lon, "lat": place.lat, "date": place.date.isoformat(),
        "region": place.region, "biome": place.biome,
        "event": event["name"] if event is not None else "",
        "labels": labels + crisis, "crisis_tags": crisis,
        "caption": cards.caption_for(labels + crisis),
        **{column: float(f)
           for column, f in zip(cards.fraction_columns(), fractions, strict=True)},
    }
    return surface, meta


def _split(rng: np.random.Generator) -> str:
    draw = rng.random()
    if draw < SPLIT_FRACTIONS["train"]:
        return "train"
    return "val" if draw < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["val"] else "test"


def _make_scene(job: tuple[int, str, tuple[str, ...], np.random.SeedSequence, int, str]
                ) -> list[dict[str, Any]]:
    """Simulate and write one scene for one or both sensors; return its metadata rows."""
    index, scene_id, sensors, seed, size, root = job
    rng = np.random.default_rng(seed)
    surface, meta = simulate_surface(rng, size)
    split = "test" if len(sensors) > 1 else _split(rng)
    physics = _physics()
    rows = []
    for sensor in sensors:
        path = Path(root) / sensor / f"{scene_id}.tif"
        if sensor == "s2":
            image, crs, product = _write_s2(rng, surface, meta, physics, Path(root), scene_id)
        else:
            image, bands = render_s1(rng, surface, physics), cards.s1_bands()
            crs = write_geotiff(path, image, meta["lon"], meta["lat"], bands,
                                cards.card("sentinel1")["nodata"])
            product = _NO_S2_PRODUCT
        row_id = f"{sensor}_{scene_id}" if len(sensors) > 1 else scene_id
        rows.append({"id": row_id, "sensor": sensor,
                     "path": f"{sensor}/{scene_id}.tif", "pair_id": scene_id if len(sensors) > 1
                     else "", "split": split, "crs": crs, "index": index, **product, **meta})
    return rows


#: The S2-only metadata columns of an S1 row (SAR sees through clouds: no cloud cover).
_NO_S2_PRODUCT = {"processing_level": "GRD", "processing_baseline": "", "radiometric_offset": 0,
                  "cloud_fraction": 0.0, "cloud_shadow_fraction": 0.0, "cloud_regime": "",
                  "sun_zenith_deg": float("nan"), "sun_azimuth_deg": float("nan"),
                  "scl_path": ""}


def _write_s2(rng: np.random.Generator, surface: np.ndarray, meta: dict[str, Any],
              physics: Physics, root: Path, scene_id: str
              ) -> tuple[np.ndarray, str, dict[str, Any]]:
    """Render and write one S2 product and its SCL layer; return DN, CRS and its columns.

    Digital numbers carry the radiometric offset of the processing baseline in force on
    the sensing date (:func:`~.writer.s2_product`), declared in the file's tags and in the
    metadata columns ``processing_level``, ``processing_baseline``, ``radiometric_offset``.
    """
    reflectance, scl, sky = render_s2(rng, surface, physics, meta["lat"],
                                      datetime.fromisoformat(meta["date"]).date())
    product = s2_product(meta["date"], physics.card)
    image = digital_numbers(reflectance, product.offset)  # (13, H, W) uint16
    crs = write_geotiff(root / "s2" / f"{scene_id}.tif", image, meta["lon"], meta["lat"],
                        cards.s2_bands("L1C"), 0, product.tags())
    scl_path = f"s2/{scene_id}{SCL_SUFFIX}"
    write_geotiff(root / scl_path, scl[None], meta["lon"], meta["lat"], ["SCL"], 0,
                  {"LAYER": "SCL", "PROCESSING_LEVEL": product.level})
    cloud, shadow = cloud_fractions(scl)
    return image, crs, {
        "processing_level": product.level, "processing_baseline": product.baseline,
        "radiometric_offset": product.offset, "cloud_fraction": cloud,
        "cloud_shadow_fraction": shadow, "cloud_regime": sky.regime,
        "sun_zenith_deg": sky.sun_zenith_deg, "sun_azimuth_deg": sky.sun_azimuth_deg,
        "scl_path": scl_path}


def _stray_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` outside the generator's layout (relative names, sorted).

    The layout is ``s1/`` and ``s2/`` holding only GeoTIFFs (and GDAL ``.aux.xml`` side
    files), ``metadata.parquet``, ``manifest.json`` and the generator's own temporary files.
    Symbolic links are never part of it.
    """
    stray = []
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name in _SENSOR_DIRS and entry.is_dir(follow_symlinks=False):
                with os.scandir(entry.path) as scenes:
                    stray += [f"{name}/{scene.name}" for scene in scenes
                              if not scene.is_file(follow_symlinks=False)
                              or not scene.name.endswith(_SCENE_SUFFIXES)]
            elif not (entry.is_file(follow_symlinks=False) and (
                    name in _ARCHIVE_FILES or name == ".metadata.parquet.tmp"
                    or (name.startswith(".manifest.json.") and name.endswith(".tmp")))):
                stray.append(name)
    return sorted(stray)


def archive_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete archive written by this generator (None when it is).

    An archive of ours has ``s1/``, ``s2/``, ``metadata.parquet`` and, written last,
    a ``manifest.json`` naming this generator (archives from before the ``generator`` key
    are recognised by their version-1 parameter keys), and nothing else.

    Args:
        folder: The folder to inspect (read only).

    Returns:
        None for a complete archive of ours, else a short reason.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return "not a folder"
    stray = _stray_entries(folder)
    if stray:
        more = f" and {len(stray) - 3} more" if len(stray) > 3 else ""
        return f"it holds {', '.join(stray[:3])}{more}"
    missing = [n for n in (*_SENSOR_DIRS, "metadata.parquet", "manifest.json")
               if not (folder / n).exists()]
    if missing:
        return f"{', '.join(missing)} missing"
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "manifest.json is not readable JSON"
    if not isinstance(manifest, dict):
        return "manifest.json is not a generator manifest"
    legacy = "generator" not in manifest and manifest.get("version") == 1 and \
        _LEGACY_KEYS <= manifest.keys()
    if manifest.get("generator") != GENERATOR_NAME and not legacy:
        return "manifest.json was not written by this generator"
    return None


def _build(root: Path, params: dict[str, int], workers: int | None, progress: bool,
           shown: Path) -> Path:
    """Write every scene, the metadata table and (last) the manifest into ``root``.

    Args:
        root: The (temporary) folder to fill.
        params: Generator parameters and version, as saved in the manifest.
        workers: Processes (default: the machine's cores, at most 4).
        progress: Show a progress bar and a summary.
        shown: The archive's final folder, named in the summary.

    Returns:
        ``root``.
    """
    import geopandas as gpd
    from rich.console import Console
    from rich.progress import Progress

    n_s2, n_s1, n_paired, size = params["n_s2"], params["n_s1"], params["n_paired"], \
        params["size"]
    for sensor in _SENSOR_DIRS:
        (root / sensor).mkdir(parents=True, exist_ok=True)
    plan = ([(f"s2_{i:05d}", ("s2",)) for i in range(n_s2)]
            + [(f"s1_{i:05d}", ("s1",)) for i in range(n_s1)]
            + [(f"pair_{i:05d}", ("s2", "s1")) for i in range(n_paired)])
    seeds = np.random.SeedSequence(params["seed"]).spawn(len(plan))
    jobs = [(i, scene_id, sensors, seeds[i], size, str(root))
            for i, (scene_id, sensors) in enumerate(plan)]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    workers = workers or min(os.cpu_count() or 1, 4)
    with ProcessPoolExecutor(max_workers=workers) as pool, Progress(disable=not progress) as bar:
        task = bar.add_task("Simulating Sentinel-1/2 scenes", total=len(jobs))
        for scene_rows in pool.map(_make_scene, jobs, chunksize=32):
            rows.extend(scene_rows)
            bar.advance(task)
    frame = gpd.GeoDataFrame(
        rows, geometry=[scene_footprint(r["lon"], r["lat"], size) for r in rows], crs="EPSG:4326")
    frame = frame.sort_values("index").drop(columns="index").reset_index(drop=True)
    tmp = root / ".metadata.parquet.tmp"
    frame.to_parquet(tmp)
    os.replace(tmp, root / "metadata.parquet")
    seconds = time.perf_counter() - started
    manifest = {"generator": GENERATOR_NAME, **params, "rows": len(frame),
                "seconds": round(seconds, 1),
                "created": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_bytes(root / "manifest.json", json.dumps(manifest, indent=2).encode())
    if progress:
        counts = frame.groupby(["sensor", "split"]).size().to_dict()
        events = int((frame["event"] != "").sum())
        Console().print(f"[bold]Synthetic archive[/] {shown}: {len(frame)} scenes in "
                        f"{seconds:.0f} s; by (sensor, split): {counts}; "
                        f"in crisis events: {events}")
    return root


def generate_archive(
    out: str | Path, n_s2: int = 3000, n_s1: int = 3000, n_paired: int = 300, seed: int = 0,
    size: int = 64, workers: int | None = None, progress: bool = True, overwrite: bool = False,
) -> Path:
    """Generate a synthetic archive (deterministic for a seed) without risking other data.

    ``out`` may be missing, an empty folder, or (with ``overwrite``) an archive written
    earlier by this generator; anything else is refused before anything is written. The
    archive is built in a hidden temporary folder next to ``out`` and swapped in whole,
    so a failure or an interruption leaves the previous contents of ``out`` as they were.

    Args:
        out: Archive folder.
        n_s2: Unpaired Sentinel-2 scenes.
        n_s1: Unpaired Sentinel-1 scenes.
        n_paired: Places seen by both sensors (test split, cross-sensor evaluation).
        seed: Random seed.
        size: Scene side in pixels (10 m pixels).
        workers: Processes (default: the machine's cores, at most 4).
        progress: Show a progress bar and a summary.
        overwrite: Replace ``out`` when it already holds an archive of this generator.

    Returns:
        The archive folder (``out``).

    Raises:
        UnsafeOutputError: ``out`` is a file or a non-empty folder that is not an archive
            of this generator (even with ``overwrite``), or an archive of this generator
            and ``overwrite`` is False. Nothing in ``out`` is changed.
    """
    params = {"n_s2": n_s2, "n_s1": n_s1, "n_paired": n_paired, "seed": seed, "size": size,
              "version": GENERATOR_VERSION}
    return write_generated(out, lambda tmp: _build(tmp, params, workers, progress, shown=out),
                           archive_problem, GENERATOR_NAME, overwrite=overwrite,
                           noun="archive")


def default_cache_dir() -> Path:
    """Where the default archive lives: ``$MOSAIC_VLM_CACHE/synthetic`` (or ``~/.cache/...``)."""
    return cache_root() / "synthetic"


def default_archive(cache_dir: str | Path | None = None, *, workers: int | None = None,
                    progress: bool = True, **params: Any) -> Path:
    """The default archive, generated once and reused while its parameters match.

    Safe with concurrent callers: the check and the generation run under an exclusive
    lock on ``<cache_dir>/<archive name>.lock``, so a second caller waits for the first
    and then reuses its archive instead of generating it again. An incomplete archive
    left by a crashed run is regenerated.

    Args:
        cache_dir: Parent folder (default: :func:`default_cache_dir`).
        workers: Processes used when the archive has to be generated.
        progress: Show a progress bar and a summary when generating.
        **params: Generator parameters overriding the defaults (``n_s2``, ``n_s1``,
            ``n_paired``, ``seed``, ``size``).

    Returns:
        The archive folder.
    """
    settings = {"n_s2": 3000, "n_s1": 3000, "n_paired": 300, "seed": 0, "size": 64, **params}
    name = "archive-" + "-".join(f"{k}{v}" for k, v in sorted(settings.items()))
    parent = Path(cache_dir or default_cache_dir())
    return cached_generated(
        parent / name, {**settings, "version": GENERATOR_VERSION},
        lambda folder: generate_archive(folder, **settings, workers=workers,
                                        progress=progress, overwrite=True),
        archive_problem, _stray_entries, GENERATOR_NAME, cache_name="synthetic-archive",
        announce_wait=progress)
