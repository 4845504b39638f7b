"""Sharded, resumable, checksummed embedding of a whole archive (the first half of an index).

An archive is cut into shards of consecutive dataset rows. Each finished shard is
written to a work folder (``<out>.partial`` next to the index being built): its vectors
(``.npy``), its metadata (``.parquet``) and last a ``.json`` marker holding both files'
SHA-256, so a shard counts as done only when the marker certifies intact files. A build
interrupted and run again with the same plan keeps every finished shard and embeds only
the rest; a build with another plan is refused (``restart=True`` discards the old one).

Rows are read with ``dataset.read_sample`` (exactly that row, never a substitute) in a
DataLoader; a bad row is skipped and counted in the shard's marker (or raised with
``strict=True``). What a row becomes — vectors and a metadata record — is the domain's
callback, so every domain's index shares this machinery. What this adds on top of
FAISS (:mod:`core.retrieval` writes the index itself): resumption, checksums, progress.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import DataLoader, Dataset

from core.atomic import atomic_write_bytes
from core.checksums import sha256_bytes

PLAN_FILE = "plan.json"

#: ``embed(shard key, [(row, sample), ...]) -> ((B, W) float32 vectors, B-row frame)``;
#: called with an empty list it returns the empty shapes.
EmbedBatch = Callable[[str, list[tuple[int, dict[str, Any]]]], tuple[np.ndarray, pd.DataFrame]]


def work_folder(out: str | Path) -> Path:
    """Where the shards of an index being built live: ``<out>.partial`` next to it."""
    out = Path(out)
    return out.parent / f"{out.name}.partial"


@dataclass
class Shard:
    """Consecutive rows of one dataset, embedded and stored together.

    Attributes:
        key: What the rows are (e.g. a sensor), handed to the embedding callback.
        number: The shard's number within its key.
        dataset: A dataset with ``read_sample``, ``read_errors`` and ``_path``.
        rows: The dataset rows.
    """

    key: str
    number: int
    dataset: Any
    rows: range

    @property
    def name(self) -> str:
        """The shard's file stem, e.g. ``s2-00003``."""
        return f"{self.key}-{self.number:05d}"


def plan_shards(datasets: dict[str, Any], shard_size: int) -> list[Shard]:
    """Cut each dataset (key -> dataset) into shards of ``shard_size`` consecutive rows."""
    return [Shard(key, number, dataset, range(start, min(start + shard_size, len(dataset))))
            for key, dataset in datasets.items()
            for number, start in enumerate(range(0, len(dataset), shard_size))]


@dataclass
class ShardedEmbeddings:
    """What :func:`embed_archive` produced.

    Attributes:
        work: The work folder (remove it with :meth:`discard` once the index is saved).
        vectors: (N, W) float32, every shard in order.
        frames: Each shard's metadata, in order.
        bad_samples: ``(path, problem)`` of every row skipped.
        reused: Shards kept from an interrupted build.
        embedded: Shards embedded by this call.
    """

    work: Path
    vectors: np.ndarray
    frames: list[pd.DataFrame] = field(default_factory=list)
    bad_samples: list[tuple[str, str]] = field(default_factory=list)
    reused: int = 0
    embedded: int = 0

    def discard(self) -> None:
        """Remove the work folder (after the index that used it was written)."""
        shutil.rmtree(self.work, ignore_errors=True)


class _Rows(Dataset):
    """Reads chosen rows of a dataset, returning the error instead of a substitute."""

    def __init__(self, dataset: Any, rows: range, strict: bool) -> None:
        self.dataset, self.rows, self.strict = dataset, rows, strict

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, position: int) -> tuple[int, dict[str, Any] | None, str]:
        row = self.rows[position]
        try:
            return row, self.dataset.read_sample(row), ""
        except self.dataset.read_errors as error:
            if self.strict:
                raise
            return row, None, str(error)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as Parquet bytes (GeoDataFrames as GeoParquet)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _write_shard(work: Path, shard: Shard, vectors: np.ndarray, frame: pd.DataFrame,
                 bad: list[tuple[str, str]]) -> None:
    """Write one shard: vectors, metadata, then the marker that certifies both."""
    buffer = io.BytesIO()
    np.save(buffer, vectors, allow_pickle=False)
    npy, parquet = buffer.getvalue(), parquet_bytes(frame)
    atomic_write_bytes(work / f"{shard.name}.npy", npy)
    atomic_write_bytes(work / f"{shard.name}.parquet", parquet)
    marker = {"rows": [shard.rows.start, shard.rows.stop], "count": len(vectors), "bad": bad,
              "sha256": {"npy": sha256_bytes(npy), "parquet": sha256_bytes(parquet)}}
    atomic_write_bytes(work / f"{shard.name}.json", json.dumps(marker).encode())


def _read_shard(work: Path, shard: Shard, read_frame: Callable[[io.BytesIO], pd.DataFrame]
                ) -> tuple[np.ndarray, pd.DataFrame, list[tuple[str, str]]] | None:
    """A finished shard, or ``None`` when it is missing, partial or damaged."""
    try:
        marker = json.loads((work / f"{shard.name}.json").read_text())
        npy = (work / f"{shard.name}.npy").read_bytes()
        parquet = (work / f"{shard.name}.parquet").read_bytes()
        if (sha256_bytes(npy), sha256_bytes(parquet)) != (marker["sha256"]["npy"],
                                                          marker["sha256"]["parquet"]):
            return None
        vectors = np.load(io.BytesIO(npy), allow_pickle=False)
        frame = read_frame(io.BytesIO(parquet))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(vectors) != marker["count"] or len(frame) != len(vectors):
        return None
    return vectors, frame, [tuple(b) for b in marker["bad"]]  # type: ignore[misc]


def _open_plan(work: Path, plan: dict[str, Any], restart: bool) -> bool:
    """Create or reuse the work folder; whether it holds shards of this very plan."""
    plan_path = work / PLAN_FILE
    if plan_path.is_file() and not restart:
        try:
            previous = json.loads(plan_path.read_text())
        except json.JSONDecodeError:
            previous = None
        if previous != plan:
            changed = sorted(k for k in plan if previous is None or previous.get(k) != plan[k])
            raise ValueError(f"{work}: an interrupted build with other settings is here "
                             f"(differs in {', '.join(changed)}); run the same command as "
                             f"before to resume it, or pass --restart to discard it")
        return True
    if work.exists():
        if not plan_path.is_file() and any(work.iterdir()):
            raise ValueError(f"{work}: exists and is not an interrupted index build; move it "
                             f"away (it is where the build keeps its shards)")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    atomic_write_bytes(plan_path, json.dumps(plan, indent=2).encode())
    return False


def _embed_shard(shard: Shard, embed: EmbedBatch, batch_size: int, num_workers: int,
                 strict: bool, advance: Callable[[int], None]
                 ) -> tuple[np.ndarray, pd.DataFrame, list[tuple[str, str]]]:
    """Read and embed one shard's rows; bad rows are returned, not embedded."""
    loader = DataLoader(_Rows(shard.dataset, shard.rows, strict), batch_size=batch_size,
                        num_workers=num_workers, collate_fn=list)
    vectors, frames, bad = [], [], []
    for items in loader:
        good = [(row, sample) for row, sample, _ in items if sample is not None]
        bad.extend((shard.dataset._path(row), problem)
                   for row, sample, problem in items if sample is None)
        if good:
            batch_vectors, frame = embed(shard.key, good)
            vectors.append(batch_vectors)
            frames.append(frame)
        advance(len(items))
    if not vectors:
        empty_vectors, empty_frame = embed(shard.key, [])
        return empty_vectors.astype(np.float32), empty_frame, bad
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return np.concatenate(vectors).astype(np.float32), frame, bad


def embed_archive(
    out: str | Path, plan: dict[str, Any], shards: Sequence[Shard], embed: EmbedBatch, *,
    batch_size: int = 64, num_workers: int = 0, strict: bool = False, restart: bool = False,
    read_frame: Callable[[io.BytesIO], pd.DataFrame] = pd.read_parquet,
    progress: bool = True, console: Console | None = None,
) -> ShardedEmbeddings:
    """Embed every shard, keeping finished shards of an interrupted build with the same plan.

    Args:
        out: The index folder to be written (its work folder is ``<out>.partial``).
        plan: What identifies the build (archive, model fingerprint, shard size...): a
            different plan is never mixed with old shards.
        shards: The shards (see :func:`plan_shards`).
        embed: The domain's batch embedding (see :data:`EmbedBatch`).
        batch_size: Rows read and embedded together.
        num_workers: DataLoader worker processes reading rows.
        strict: Raise on the first bad row instead of skipping it.
        restart: Discard an interrupted build instead of resuming it.
        read_frame: Reads a shard's Parquet metadata back (GeoParquet for scenes).
        progress: Show a progress bar.
        console: Where the progress bar and messages go.

    Returns:
        The vectors, metadata and counts of every shard.
    """
    console = console or Console()
    work = work_folder(out)
    resuming = _open_plan(work, plan, restart)
    result = ShardedEmbeddings(work, np.zeros((0, 0), np.float32))
    parts: list[np.ndarray] = []
    columns = [TextColumn("[bold]embedding[/] {task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=not progress) as bar:
        task = bar.add_task("rows", total=sum(len(s.rows) for s in shards))
        try:
            for shard in shards:
                found = _read_shard(work, shard, read_frame) if resuming else None
                if found is None:
                    bar.update(task, description=f"{shard.key} shard {shard.number + 1}")
                    found = _embed_shard(shard, embed, batch_size, num_workers, strict,
                                         lambda n: bar.advance(task, n))
                    _write_shard(work, shard, *found)
                    result.embedded += 1
                else:
                    bar.advance(task, len(shard.rows))
                    result.reused += 1
                parts.append(found[0])
                result.frames.append(found[1])
                result.bad_samples.extend(found[2])
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted[/]: {result.embedded} new shard(s) kept in "
                          f"{work}; run the same command again to resume")
            raise
    if parts:
        result.vectors = np.concatenate(parts)
    return result
