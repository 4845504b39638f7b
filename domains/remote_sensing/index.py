"""`python -m domains.remote_sensing.index build ARCHIVE --run RUN --out INDEX`: index an archive.

Embeds every scene of an archive (any loader layout, both sensors) with a trained run and
writes a searchable index folder: the FAISS index, a GeoParquet of scene metadata (id,
path, sensor, footprint, lon/lat, date, labels when known) and a manifest — all written
atomically (see :class:`core.retrieval.EmbeddingIndex`). Search it with
``python -m domains.remote_sensing.search`` or :class:`~domains.remote_sensing.SceneIndex`.

Work is cut into shards of consecutive scenes written to ``INDEX.partial/`` as they finish
(:mod:`core.indexing`: checksummed, resumable). An interrupted build run again with the
same command keeps every finished shard and embeds only the rest; the partial folder is
removed once the index is written. This module adds what is about scenes: which
archive and sensors, the scene metadata (footprint, date, labels) and GeoCLOSP's
location vectors.
GeoCLOSP runs store each scene's location embedding next to its image embedding so that
searches can fuse a query place (``--near``).
"""

from __future__ import annotations

import argparse
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import torch
from rich.console import Console
from shapely.geometry import Point

from core.cli import run_cli
from core.indexing import embed_archive, plan_shards
from core.resources import load_yaml
from core.retrieval import EmbeddingIndex
from domains.remote_sensing.archives import LAYOUTS, detect_layout, open_dataset
from domains.remote_sensing.run_model import SceneRun
from domains.remote_sensing.scene_io import SceneError, geotiff_footprint, repair_antimeridian

console = Console()
INDEX_TYPE = "mosaic-vlm scene index"
PLAN_VERSION = 1
SHARD_SIZE = 2048


@dataclass
class BuildSummary:
    """What a build did.

    Attributes:
        index: The index folder written.
        scenes: Scenes indexed per sensor.
        bad_samples: ``(path, problem)`` of every scene skipped.
        shards_reused: Shards kept from an interrupted build.
        shards_embedded: Shards embedded by this invocation.
        seconds: Wall time.
        kind: The FAISS index kind built (``exact``, ``ivf``, ``ivfpq``).
        input_notes: How many indexed scenes had each input note (S1 units converted to
            dB, band order assumed from the band count, S1 channels swapped).
    """

    index: Path
    scenes: dict[str, int] = field(default_factory=dict)
    bad_samples: list[tuple[str, str]] = field(default_factory=list)
    shards_reused: int = 0
    shards_embedded: int = 0
    seconds: float = 0.0
    kind: str = ""
    input_notes: dict[str, int] = field(default_factory=dict)


def _footprint(metadata: pd.DataFrame, row: int, path: str, lon: float, lat: float) -> Any:
    """A scene's footprint: the table's geometry, the GeoTIFF's bounds, or its centre point.

    A footprint crossing the antimeridian is a two-part MultiPolygon, one part on each side
    of 180° (see :func:`~domains.remote_sensing.scene_io.geotiff_footprint`); a table
    polygon drawn across the globe there (corners projected one by one) is cut the same way.
    """
    if isinstance(metadata, gpd.GeoDataFrame) and metadata.geometry.name in metadata:
        geometry = metadata.geometry.iloc[row]
        if geometry is not None and not geometry.is_empty:
            return repair_antimeridian(geometry)
    footprint = geotiff_footprint(path)
    if footprint is not None:
        return footprint
    return Point(lon, lat) if math.isfinite(lon) and math.isfinite(lat) else None


def _record(dataset: Any, sensor: str, row: int, sample: dict[str, Any]) -> dict[str, Any]:
    """The metadata row of one indexed scene."""
    table_row = dataset.metadata.iloc[row]
    lon, lat = (float(v) for v in sample["coords"])
    date = sample.get("date") or table_row.get("date", "")
    labels = [label for label in str(sample.get("label_names", "")).split("; ") if label]
    return {"id": str(sample["id"]), "path": str(sample["path"]), "sensor": sensor,
            "lon": lon, "lat": lat, "date": "" if pd.isna(date) else str(date)[:10],
            "labels": labels, "caption": str(sample.get("caption", "")),
            "split": str(table_row.get("split", "") or ""), "row": int(row),
            "input_notes": str(sample.get("input_notes", "")),
            "geometry": _footprint(dataset.metadata, row, str(sample["path"]), lon, lat)}


def embed_scenes_batch(run: SceneRun, dataset: Any, sensor: str,
                       items: list[tuple[int, dict[str, Any]]], batch_size: int = 64
                       ) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Embed read scenes of one sensor (the batch callback of :func:`core.indexing.embed_archive`).

    Args:
        run: The loaded run.
        dataset: The scene dataset the rows come from (raw values, no transforms).
        sensor: ``"s2"`` or ``"s1"``.
        items: ``(row, sample)`` pairs.
        batch_size: Tiles per forward pass.

    Returns:
        (B, D) float32 vectors (image embedding, then the location embedding for GeoCLOSP)
        and their metadata (a GeoDataFrame in EPSG:4326).
    """
    width = run.model.embed_dim * (2 if run.has_location else 1)
    frame = pd.DataFrame([_record(dataset, sensor, row, sample) for row, sample in items],
                         columns=list(_record_columns()))
    if not items:
        return np.zeros((0, width), np.float32), gpd.GeoDataFrame(
            frame, geometry="geometry", crs="EPSG:4326")
    images = [run.normalise(sensor, sample["image"], sample.get("level")) for _, sample in items]
    features = run.embed_images(sensor, images, batch_size)  # (B, D)
    if run.has_location:
        coords = torch.stack([sample["coords"] for _, sample in items])  # (B, 2)
        known = torch.isfinite(coords).all(1)  # (B,)
        location = torch.zeros_like(features)  # no place: no location term
        if known.any():
            location[known] = run.embed_location(coords[known])
        features = torch.cat([features, location], dim=1)  # (B, 2D)
    return features.numpy().astype(np.float32), gpd.GeoDataFrame(
        frame, geometry="geometry", crs="EPSG:4326")


def _record_columns() -> tuple[str, ...]:
    return ("id", "path", "sensor", "lon", "lat", "date", "labels", "caption", "split", "row",
            "input_notes", "geometry")


def build_index(
    archive: str | Path, run: str | Path, out: str | Path, layout: str = "auto",
    sensors: Sequence[str] | None = None, split: str | None = None, variant: str = "main",
    kind: str = "auto", exact_threshold: int = 100_000, nlist: int | None = None,
    nprobe: int | None = None, shard_size: int = SHARD_SIZE, batch_size: int = 64,
    num_workers: int = 0, strict: bool = False, restart: bool = False,
    device: str = "cpu", progress: bool = True,
) -> BuildSummary:
    """Embed every scene of an archive and write a searchable index folder.

    Args:
        archive: Archive folder.
        run: Run folder written by ``domains.remote_sensing.train``.
        out: Index folder to write (replaced atomically if it exists).
        layout: Archive layout (``auto``: detected from its files; see
            :data:`~domains.remote_sensing.datamodule.LAYOUTS`).
        sensors: Sensors to index (default: every sensor the model embeds).
        split: Only this split (default: the whole archive).
        variant: Which model of the run (``main`` or a companion).
        kind: FAISS index kind: ``auto`` (exact below ``exact_threshold`` scenes, IVF from
            it), ``exact``, ``ivf`` or ``ivfpq``.
        exact_threshold: Scene count from which ``auto`` builds an IVF index.
        nlist: IVF cells (default: chosen by size).
        nprobe: IVF cells visited per query (default: chosen by size).
        shard_size: Scenes per resumable shard.
        batch_size: Scenes embedded per forward pass.
        num_workers: DataLoader worker processes reading scenes.
        strict: Raise on the first bad scene instead of skipping and counting it.
        restart: Discard an interrupted build's shards instead of resuming.
        device: Where the model runs.
        progress: Show a progress bar and a summary.

    Returns:
        What the build did.
    """
    started = time.perf_counter()
    archive, out = Path(archive).resolve(), Path(out)
    layout = detect_layout(archive) if layout == "auto" else layout
    loaded = SceneRun.load(run, variant=variant, device=device)
    sensors = list(sensors or loaded.sensors)
    for sensor in sensors:
        loaded.check_sensor(sensor)
    datasets = {s: open_dataset(archive, layout, s, split, loaded.bands[s], None, False, False)
                for s in sensors}
    plan = {"version": PLAN_VERSION, "archive": str(archive), "layout": layout,
            "split": split, "sensors": sensors, "run_fingerprint": loaded.fingerprint,
            "shard_size": shard_size, "rows": {s: len(d) for s, d in datasets.items()}}
    built = embed_archive(
        out, plan, plan_shards(datasets, shard_size),
        lambda sensor, items: embed_scenes_batch(loaded, datasets[sensor], sensor, items,
                                                 batch_size),
        batch_size=batch_size, num_workers=num_workers, strict=strict, restart=restart,
        read_frame=gpd.read_parquet, progress=progress, console=console)
    summary = BuildSummary(out, bad_samples=built.bad_samples, shards_reused=built.reused,
                           shards_embedded=built.embedded)
    vectors = built.vectors  # (N, D or 2D)
    metadata = gpd.GeoDataFrame(pd.concat(built.frames, ignore_index=True),
                                geometry="geometry", crs="EPSG:4326")
    if len(vectors) == 0:
        raise SceneError(f"{archive}: no readable scene to index ({len(summary.bad_samples)} "
                         f"bad; first: {summary.bad_samples[:1]})")
    index = EmbeddingIndex(vectors.shape[1], kind=kind, exact_threshold=exact_threshold,
                           nlist=nlist, nprobe=nprobe, normalize=not loaded.has_location)
    index.add(vectors, metadata)
    index.build()
    summary.scenes = {s: int((metadata["sensor"] == s).sum()) for s in sensors}
    summary.input_notes = dict(Counter(note for notes in metadata["input_notes"]
                                       for note in str(notes).split("; ") if note))
    index.info = {
        "type": INDEX_TYPE, "run": str(Path(run).resolve()), "variant": variant,
        "run_fingerprint": loaded.fingerprint, "model": loaded.model.config.name,
        "archive": str(archive), "layout": layout, "split": split, "sensors": sensors,
        "bands": loaded.bands, "embed_dim": loaded.model.embed_dim,
        "location": loaded.has_location, "proximity_weight": loaded.proximity_weight,
        "scenes": summary.scenes, "bad_samples": len(summary.bad_samples),
        "input_notes": summary.input_notes,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    index.save(out)
    built.discard()
    summary.kind, summary.seconds = index.built["kind"], time.perf_counter() - started
    if progress:
        _print_summary(summary, index)
    return summary


def _print_summary(summary: BuildSummary, index: EmbeddingIndex) -> None:
    counts = ", ".join(f"{s}: {n}" for s, n in summary.scenes.items())
    size = sum(p.stat().st_size for p in summary.index.iterdir()) / 2**20
    cells = f", {index.built['nlist']} cells, nprobe {index.built['nprobe']}" \
        if "nlist" in index.built else ""
    console.print(f"[green]✓[/] indexed {sum(summary.scenes.values())} scenes ({counts}) into "
                  f"{summary.index} — {summary.kind}{cells}, {size:.1f} MiB, "
                  f"{summary.seconds:.1f} s")
    if summary.shards_reused:
        console.print(f"  resumed: {summary.shards_reused} finished shard(s) kept, "
                      f"{summary.shards_embedded} embedded now")
    if summary.bad_samples:
        console.print(f"  [yellow]{len(summary.bad_samples)} bad scene(s) skipped[/], e.g. "
                      f"{summary.bad_samples[0][1]}")
    for note, count in summary.input_notes.items():
        console.print(f"  [yellow]{count} scene(s): {note}[/] (see the input_notes column)")


def training_archive(run: Path) -> tuple[Path, str]:
    """The archive and layout a run was trained on (its ``run.yaml``; default archive if none)."""
    if not (run / "run.yaml").is_file():
        raise FileNotFoundError(f"{run / 'run.yaml'}: not found; name the ARCHIVE to index")
    data = load_yaml(run / "run.yaml").get("data", {})
    if data.get("root"):
        return Path(data["root"]), data.get("layout") or "auto"
    from domains.remote_sensing.synthetic import default_archive

    return default_archive(), "folder"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m domains.remote_sensing.index",
                                     description="Build or inspect a scene index.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="embed an archive into an index folder")
    build.add_argument("archive", type=Path, nargs="?",
                       help="archive folder (default: the archive the run was trained on)")
    build.add_argument("--run", type=Path, required=True, help="run folder written by train")
    build.add_argument("--out", type=Path, required=True, help="index folder to write")
    build.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS),
                       help="archive layout (default: detected)")
    build.add_argument("--sensors", help="comma-separated sensors (default: the model's)")
    build.add_argument("--split", help="only this split (default: every scene)")
    build.add_argument("--variant", default="main", help="main or a companion of the run")
    build.add_argument("--kind", default="auto", choices=("auto", "exact", "ivf", "ivfpq"),
                       help="FAISS index kind (default: exact below --exact-threshold)")
    build.add_argument("--exact-threshold", type=int, default=100_000)
    build.add_argument("--nlist", type=int, help="IVF cells (default: by size)")
    build.add_argument("--nprobe", type=int, help="IVF cells visited per query")
    build.add_argument("--shard-size", type=int, default=SHARD_SIZE)
    build.add_argument("--batch-size", type=int, default=64)
    build.add_argument("--workers", type=int, default=0, help="scene-reading processes")
    build.add_argument("--device", default="cpu")
    build.add_argument("--strict", action="store_true", help="stop at the first bad scene")
    build.add_argument("--restart", action="store_true",
                       help="discard an interrupted build instead of resuming it")
    info = commands.add_parser("info", help="describe an index folder")
    info.add_argument("index", type=Path)
    return parser


def main(argv: list[str] | None = None) -> Any:
    """Run the command line; returns the build summary or the index description."""
    args = build_parser().parse_args(argv)
    if args.command == "info":
        from domains.remote_sensing.scene_index import SceneIndex

        description = SceneIndex.load(args.index).describe()
        console.print_json(data=description)
        return description
    sensors = args.sensors.split(",") if args.sensors else None
    archive, layout = args.archive, args.layout
    if archive is None:
        archive, layout = training_archive(args.run)
    return build_index(archive, args.run, args.out, layout=layout, sensors=sensors,
                       split=args.split, variant=args.variant, kind=args.kind,
                       exact_threshold=args.exact_threshold, nlist=args.nlist,
                       nprobe=args.nprobe, shard_size=args.shard_size,
                       batch_size=args.batch_size, num_workers=args.workers,
                       strict=args.strict, restart=args.restart, device=args.device)


def cli() -> None:
    """``python -m`` entry point: bad input ends with a one-line error, not a traceback."""
    run_cli(main, console)


if __name__ == "__main__":
    cli()
