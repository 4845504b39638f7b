"""Generate the synthetic Sentinel-1/2 archive: GeoTIFF scenes + a GeoParquet of metadata.

Layout of an archive folder::

    s2/<id>.tif            13-band uint16 L1C-like scenes (reflectance x 10000, nodata 0)
    s1/<id>.tif            2-band float32 sigma0 in dB (VV, VH; nodata -9999)
    metadata.parquet       one row per file: footprint, sensor, date, labels, caption, split
    manifest.json          parameters and counts; written last, so its presence means complete

S1 and S2 scenes are unpaired (different places), except a smaller paired subset
(same surface seen by both sensors, ``pair_id`` set) kept for cross-sensor evaluation.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import atomic_write_bytes
from core.resources import cache_root
from domains.remote_sensing import cards
from domains.remote_sensing.synthetic.fields import land_cover_map, smooth_noise
from domains.remote_sensing.synthetic.geography import class_logits, place_scene
from domains.remote_sensing.synthetic.physics import Physics, render_s1, render_s2
from domains.remote_sensing.synthetic.writer import scene_footprint, write_geotiff

GENERATOR_VERSION = 1
MIN_LABEL_FRACTION = 0.05
SPLIT_FRACTIONS = {"train": 0.75, "val": 0.05, "test": 0.20}
CRISIS_AS_LAND_COVER = {"flooded area": "water", "burned area": "bare ground",
                        "earthquake damage": "built area"}


@cache
def _physics() -> Physics:
    card = dict(cards.card("synthetic"))
    card["equivalent_number_of_looks"] = cards.card("sentinel1")["equivalent_number_of_looks"]
    return Physics.from_card(card, cards.land_cover_classes(), cards.crisis_tags())


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
        cloud_fraction = 0.0
        if sensor == "s2":
            clouds = rng.random() < physics.card["cloud_probability"]
            image, cloud_fraction = render_s2(rng, surface, physics, clouds)
            bands, nodata = cards.s2_bands("L1C"), 0
        else:
            image, bands = render_s1(rng, surface, physics), cards.s1_bands()
            nodata = cards.card("sentinel1")["nodata"]
        crs = write_geotiff(path, image, meta["lon"], meta["lat"], bands, nodata)
        row_id = f"{sensor}_{scene_id}" if len(sensors) > 1 else scene_id
        rows.append({"id": row_id, "sensor": sensor,
                     "path": f"{sensor}/{scene_id}.tif", "pair_id": scene_id if len(sensors) > 1
                     else "", "split": split, "cloud_fraction": cloud_fraction, "crs": crs,
                     "index": index, **meta})
    return rows


def generate_archive(
    out: str | Path, n_s2: int = 3000, n_s1: int = 3000, n_paired: int = 300, seed: int = 0,
    size: int = 64, workers: int | None = None, progress: bool = True,
) -> Path:
    """Generate a synthetic archive (deterministic for a seed).

    Args:
        out: Archive folder (replaced if it exists).
        n_s2: Unpaired Sentinel-2 scenes.
        n_s1: Unpaired Sentinel-1 scenes.
        n_paired: Places seen by both sensors (test split, cross-sensor evaluation).
        seed: Random seed.
        size: Scene side in pixels (10 m pixels).
        workers: Processes (default: the machine's cores).
        progress: Show a progress bar and a summary.

    Returns:
        The archive folder.
    """
    import geopandas as gpd
    from rich.console import Console
    from rich.progress import Progress

    out = Path(out)
    params = {"n_s2": n_s2, "n_s1": n_s1, "n_paired": n_paired, "seed": seed, "size": size,
              "version": GENERATOR_VERSION}
    if out.exists():
        shutil.rmtree(out)
    for sensor in ("s2", "s1"):
        (out / sensor).mkdir(parents=True)
    plan = ([(f"s2_{i:05d}", ("s2",)) for i in range(n_s2)]
            + [(f"s1_{i:05d}", ("s1",)) for i in range(n_s1)]
            + [(f"pair_{i:05d}", ("s2", "s1")) for i in range(n_paired)])
    seeds = np.random.SeedSequence(seed).spawn(len(plan))
    jobs = [(i, scene_id, sensors, seeds[i], size, str(out))
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
    tmp = out / ".metadata.parquet.tmp"
    frame.to_parquet(tmp)
    os.replace(tmp, out / "metadata.parquet")
    seconds = time.perf_counter() - started
    manifest = {**params, "rows": len(frame), "seconds": round(seconds, 1)}
    atomic_write_bytes(out / "manifest.json", json.dumps(manifest, indent=2).encode())
    if progress:
        counts = frame.groupby(["sensor", "split"]).size().to_dict()
        events = int((frame["event"] != "").sum())
        Console().print(f"[bold]Synthetic archive[/] {out}: {len(frame)} scenes in "
                        f"{seconds:.0f} s; by (sensor, split): {counts}; "
                        f"in crisis events: {events}")
    return out


def default_cache_dir() -> Path:
    """Where the default archive lives: ``$MOSAIC_VLM_CACHE/synthetic`` (or ``~/.cache/...``)."""
    return cache_root() / "synthetic"


def default_archive(cache_dir: str | Path | None = None, **params: Any) -> Path:
    """The default archive, generated once and reused while its parameters match.

    Args:
        cache_dir: Parent folder (default: :func:`default_cache_dir`).
        **params: Generator parameters overriding the defaults.

    Returns:
        The archive folder.
    """
    settings = {"n_s2": 3000, "n_s1": 3000, "n_paired": 300, "seed": 0, "size": 64, **params}
    name = "archive-" + "-".join(f"{k}{v}" for k, v in sorted(settings.items()))
    folder = Path(cache_dir or default_cache_dir()) / name
    manifest = folder / "manifest.json"
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        if all(saved.get(k) == v for k, v in settings.items()) and \
                saved.get("version") == GENERATOR_VERSION:
            return folder
    return generate_archive(folder, **settings)
