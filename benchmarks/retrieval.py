"""Benchmark of the scene index (``core.retrieval.EmbeddingIndex``) at archive scale.

For each archive size (default 10^4, 10^5 and 10^6 scenes) it builds, in the same run and
on the same vectors:

* the index as a user gets it -- ``EmbeddingIndex(dim)`` with every default, so ``auto``
  picks exact search below ``exact_threshold`` rows and IVF-Flat from it -- saved to
  disk and loaded back (the searched index is the loaded one), and
* an exact ``faiss.IndexFlatIP`` beside it (brute force, the ground truth),

then sends the same text-like queries to both *one at a time* and reports build time,
memory (RSS growth of the process while building, and bytes of ``index.faiss``), save and
load time, p50/p99 single-query latency of both and the speed-up (exact p50 / index p50),
recall@10 of the index against the exact top 10, a filtered search (a mask selecting about
half of the rows, as a sensor filter does) with its recall against exact filtered search,
and the latency of the whole query path with the text encoding included: each of a few
hundred real, varied query strings is embedded once, alone, by the closp-tiny text tower
(the bundled MiniLM, embedding cache off), and its encoding time is added, query by
query, to the time of searching each index with that embedding.

The vectors are random but clustered like image embeddings, of the closp-tiny width: 64
"themes", 4096 clusters around them (a Dirichlet mix of sizes), each with its own spread
along a 16-dimensional subspace plus isotropic noise, all sharing a common direction (the
"cone" of image embeddings), L2-normalised. Queries are text-like: a cluster centre plus
noise plus one fixed offset shared by every query (the modality gap that puts text
embeddings apart from image embeddings), normalised; no database vector is used as a query.
Everything is seeded.

    python benchmarks/retrieval.py --quick     # 10^4 and 10^5 scenes, about a minute
    python benchmarks/retrieval.py             # 10^4, 10^5 and 10^6, within ~10 min on 2 cores

Results go to ``runs/benchmarks/retrieval-cpu.json`` (written atomically).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

try:  # limits numpy's BLAS too (it serves the index's brute-force filtered path)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - then only FAISS and torch follow --threads
    threadpool_limits = None

from core.atomic import atomic_write_bytes
from core.model import ContrastiveModel
from core.registry import get_model_config
from core.retrieval import INDEX_FILE, EmbeddingIndex

MODEL = "closp-tiny"
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
K = 10
# The targets, for the largest archive (10^6 scenes) on a 2-core CPU.
TARGET = {"size": 1_000_000, "p50_ms": 5.0, "recall_at_10": 0.95, "speedup": 20.0}

# Words of the query strings: Dynamic World classes, crisis tags and free-form modifiers.
CLASSES = ("water", "trees", "grass", "flooded vegetation", "crops", "shrub and scrub",
           "built area", "bare ground", "snow and ice", "flooded area", "burned area",
           "earthquake damage")
PHRASES = ("{a} next to {b}", "{a} after heavy rain", "{a} and {b} in late summer",
           "satellite scene of {a}", "{a}. {b}", "{a} surrounded by {b} near a river",
           "recent {a} at the edge of {b}", "cloud-free image with {a} and some {b}")


@dataclass
class World:
    """The generating process of the synthetic archive (all arrays float32)."""

    centres: np.ndarray  # (C, D) unit cluster centres
    bases: np.ndarray  # (C, R, D) per-cluster directions of spread
    spread: np.ndarray  # (C,) per-cluster spread along the bases
    weights: np.ndarray  # (C,) cluster probabilities
    gap: np.ndarray  # (D,) the text-vs-image offset shared by every query


def make_world(dim: int, seed: int = 0, themes: int = 64, clusters: int = 4096,
               rank: int = 16) -> World:
    """A seeded mixture of clusters grouped into themes inside a common cone."""
    rng = np.random.default_rng(seed)

    def unit(*shape: int) -> np.ndarray:
        x = rng.standard_normal((*shape, dim), dtype=np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    cone, theme = unit(1)[0], unit(themes)  # (D,), (T, D)
    centres = theme[rng.integers(0, themes, clusters)] + 0.6 * unit(clusters) + 0.8 * cone
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)  # (C, D)
    bases = rng.standard_normal((clusters, rank, dim), dtype=np.float32) / np.sqrt(dim)
    spread = rng.uniform(0.5, 1.0, clusters).astype(np.float32)
    weights = rng.dirichlet(np.full(clusters, 2.0))
    return World(centres, bases, spread, weights, unit(1)[0])


def scene_embeddings(world: World, n: int, seed: int = 1, noise: float = 0.5,
                     chunk: int = 1 << 16) -> np.ndarray:
    """(n, D) unit image-like embeddings drawn from ``world``, in random cluster order."""
    rng = np.random.default_rng(seed)
    clusters, dim = world.centres.shape
    rank = world.bases.shape[1]
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        label = np.sort(rng.choice(clusters, m, p=world.weights))  # (m,) grouped by cluster
        block = world.centres[label]  # (m, D)
        block += rng.standard_normal((m, dim), dtype=np.float32) * (noise / np.sqrt(dim))
        g = rng.standard_normal((m, rank), dtype=np.float32)
        g *= (world.spread[label] / np.sqrt(rank))[:, None]  # (m, R)
        bounds = np.searchsorted(label, np.arange(clusters + 1))
        for c in np.flatnonzero(np.diff(bounds)):
            lo, hi = bounds[c], bounds[c + 1]
            block[lo:hi] += g[lo:hi] @ world.bases[c]  # along the cluster's own directions
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + m] = block[rng.permutation(m)]  # rows in random cluster order
    return out


def text_like_queries(world: World, q: int, seed: int = 2, noise: float = 2.0) -> np.ndarray:
    """(q, D) unit queries: a cluster centre + noise + the shared modality-gap offset."""
    rng = np.random.default_rng(seed)
    clusters, dim = world.centres.shape
    label = rng.choice(clusters, q, p=world.weights)
    x = world.centres[label] + world.gap
    x += rng.standard_normal((q, dim), dtype=np.float32) * (noise / np.sqrt(dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def query_strings(q: int, seed: int = 3) -> list[str]:
    """``q`` distinct, varied natural-language queries (deterministic)."""
    pairs = [(a, b) for a, b in itertools.permutations(CLASSES, 2)]
    texts = [p.format(a=a, b=b) for p in PHRASES for a, b in pairs]
    texts = list(dict.fromkeys([*CLASSES, *texts]))
    order = np.random.default_rng(seed).permutation(len(texts))
    return [texts[i] for i in order[:q]] if q <= len(texts) else \
        [f"{texts[i % len(texts)]} ({i // len(texts)})" for i in range(q)]


def rss_bytes() -> int | None:
    """Resident memory of this process (Linux), None where unknown."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def timed_each(fn: Callable[[Any], Any], items: Iterable[Any], progress: Progress,
               label: str, total: int, warmup: int = 3) -> tuple[np.ndarray, list[Any]]:
    """Seconds per call of ``fn`` on each item (after ``warmup`` untimed calls) and results."""
    items = list(items)
    for item in items[:warmup]:
        fn(item)
    task = progress.add_task(label, total=total)
    seconds, results = np.empty(len(items)), []
    for i, item in enumerate(items):
        start = time.perf_counter()
        results.append(fn(item))
        seconds[i] = time.perf_counter() - start
        progress.advance(task)
    progress.remove_task(task)
    return seconds, results


def timed(fn: Callable[[], Any], progress: Progress, label: str) -> tuple[float, Any]:
    """Wall time of one call of ``fn`` (shown as an indeterminate step) and its result."""
    task = progress.add_task(label, total=None)
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    progress.remove_task(task)
    return elapsed, result


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each true top-k found (ids of -1 never count)."""
    hits = [len(set(a[a >= 0].tolist()) & set(b[b >= 0].tolist())) / max((b >= 0).sum(), 1)
            for a, b in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def percentiles_ms(seconds: np.ndarray) -> dict[str, float]:
    """p50 and p99 of per-call times, in milliseconds."""
    return {"p50_ms": float(np.percentile(seconds, 50) * 1e3),
            "p99_ms": float(np.percentile(seconds, 99) * 1e3)}


def run_size(n: int, world: World, queries: np.ndarray,
             text: tuple[np.ndarray, np.ndarray] | None, progress: Progress,
             tmp_root: Path) -> dict[str, Any]:
    """Every figure for one archive size."""
    dim = world.centres.shape[1]
    result: dict[str, Any] = {"size": n, "queries": len(queries)}
    result["generate_s"], vectors = timed(lambda: scene_embeddings(world, n), progress,
                                          f"{n:,}: generating embeddings")
    mask = np.random.default_rng(4).random(n) < 0.5  # a sensor column: about half the rows

    # The index as a user builds it: every default, kind "auto".
    gc.collect()
    rss0 = rss_bytes()
    index = EmbeddingIndex(dim)
    result["build_s"], _ = timed(partial(build_index, index, vectors), progress,
                                 f"{n:,}: building EmbeddingIndex")
    gc.collect()
    rss1 = rss_bytes()
    result["rss_growth_bytes"] = rss1 - rss0 if rss0 is not None and rss1 is not None else None
    result["kind"] = index.built_kind
    result["built"] = dict(index.built)
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-", dir=tmp_root) as tmp:
        result["save_s"], folder = timed(partial(index.save, Path(tmp) / "index"), progress,
                                         f"{n:,}: saving the index")
        result["index_file_bytes"] = (folder / INDEX_FILE).stat().st_size
        index = None  # free the built index before loading its copy
        gc.collect()
        result["load_s"], index = timed(partial(EmbeddingIndex.load, folder), progress,
                                        f"{n:,}: loading the index")

    exact = faiss.IndexFlatIP(dim)
    result["exact_build_s"], _ = timed(partial(exact.add, vectors), progress,
                                       f"{n:,}: building the exact IndexFlatIP")
    result["exact_bytes"] = exact.ntotal * dim * 4
    vectors = None  # only the two indexes hold the vectors from here on
    gc.collect()

    def exact_top(q: np.ndarray) -> np.ndarray:
        return exact.search(q[None], K)[1][0]

    def index_top(q: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        return index.search(q, K, mask=mask)[1][0]

    seconds, found = timed_each(exact_top, queries, progress, f"{n:,}: exact search",
                                len(queries))
    truth = np.stack(found)  # (Q, K)
    result["exact"] = percentiles_ms(seconds)
    seconds, found = timed_each(index_top, queries, progress, f"{n:,}: index search",
                                len(queries))
    result["index"] = percentiles_ms(seconds)
    result["recall_at_10"] = recall(np.stack(found), truth)
    result["speedup"] = result["exact"]["p50_ms"] / result["index"]["p50_ms"]

    # Filtered: the same queries among the rows a sensor filter keeps.
    bitmap = np.packbits(mask, bitorder="little")
    params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(bitmap),
                                                               faiss.swig_ptr(bitmap)))
    _, (_, filtered_truth) = timed(partial(exact.search, queries, K, params=params), progress,
                                   f"{n:,}: exact filtered search (ground truth)")
    seconds, found = timed_each(partial(index_top, mask=mask), queries, progress,
                                f"{n:,}: filtered index search", len(queries))
    result["filtered"] = {**percentiles_ms(seconds), "selected": int(mask.sum()),
                          "recall_at_10": recall(np.stack(found), filtered_truth)}
    exact.reset()
    gc.collect()

    if text is not None:  # the whole query path: a string's encoding, then its search
        encode_seconds, text_queries = text
        seconds, _ = timed_each(index_top, text_queries, progress,
                                f"{n:,}: search with the encoded query strings",
                                len(text_queries))
        result["text_search"] = percentiles_ms(seconds)
        result["with_text"] = percentiles_ms(encode_seconds + seconds)  # per query
    return result


def build_index(index: EmbeddingIndex, vectors: np.ndarray) -> None:
    """Add the vectors and build (what a user's first search would trigger)."""
    index.add(vectors)
    index.build()


def text_encoder() -> tuple[Callable[[str], np.ndarray], int, float]:
    """The closp-tiny text tower as a string -> (1, D) function, D, and its load time.

    The on-disk embedding cache is off: every query string is encoded.
    """
    start = time.perf_counter()
    model = ContrastiveModel(get_model_config(MODEL, **{"towers.text.cache": False})).eval()

    def encode(text: str) -> np.ndarray:
        with torch.inference_mode():
            return model.encode("text", [text]).float().numpy()  # (1, D)

    return encode, model.embed_dim, time.perf_counter() - start


def machine(threads: int) -> dict[str, Any]:
    """Where the benchmark ran."""
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "threads": threads, "faiss": faiss.__version__, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "load_average_at_start": load}


def render(results: list[dict[str, Any]], info: dict[str, Any], console: Console) -> None:
    """Prints the results as a rich table."""
    table = Table(title=f"EmbeddingIndex vs exact IndexFlatIP, D={info['dim']}, k={K}, "
                        f"{info['queries']} single queries, {info['threads']} threads "
                        f"(load average {info['load_average_at_start']})")
    for col in ("scenes", "index", "build s", "memory MB", "save/load s", "exact p50/p99 ms",
                "index p50/p99 ms", "speed-up", "recall@10", "filtered p50/p99 ms (recall)",
                "with text p50/p99 ms"):
        table.add_column(col, justify="left" if col in ("scenes", "index") else "right")
    for r in results:
        built = r["built"]
        kind = r["kind"] if r["kind"] == "exact" else \
            f"{r['kind']} nlist {built['nlist']} nprobe {built['nprobe']}"
        memory = f"{r['index_file_bytes'] / 2**20:.0f}"
        if r["rss_growth_bytes"] is not None:
            memory += f" (RSS +{r['rss_growth_bytes'] / 2**20:.0f})"
        text = r.get("with_text")
        table.add_row(
            f"{r['size']:,}", kind, f"{r['build_s']:.1f}", memory,
            f"{r['save_s']:.1f}/{r['load_s']:.1f}",
            f"{r['exact']['p50_ms']:.2f}/{r['exact']['p99_ms']:.2f}",
            f"{r['index']['p50_ms']:.2f}/{r['index']['p99_ms']:.2f}",
            f"{r['speedup']:.0f}x", f"{r['recall_at_10']:.3f}",
            f"{r['filtered']['p50_ms']:.2f}/{r['filtered']['p99_ms']:.2f} "
            f"({r['filtered']['recall_at_10']:.3f})",
            f"{text['p50_ms']:.1f}/{text['p99_ms']:.1f}" if text else "-")
    console.print(table)
    if "text_encode" in info:
        console.print(f"text encoding alone (one string at a time): p50 "
                      f"{info['text_encode']['p50_ms']:.1f} ms, p99 "
                      f"{info['text_encode']['p99_ms']:.1f} ms")


def verdict(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the targets are met at the target size (None where it was not run)."""
    at = next((r for r in results if r["size"] == TARGET["size"]), None)
    if at is None:
        return {"size": TARGET["size"], "run": False}
    return {"size": TARGET["size"], "run": True,
            "p50_ms": {"value": at["index"]["p50_ms"], "target": TARGET["p50_ms"],
                       "met": at["index"]["p50_ms"] <= TARGET["p50_ms"]},
            "recall_at_10": {"value": at["recall_at_10"], "target": TARGET["recall_at_10"],
                             "met": at["recall_at_10"] >= TARGET["recall_at_10"]},
            "speedup": {"value": at["speedup"], "target": TARGET["speedup"],
                        "met": at["speedup"] >= TARGET["speedup"]}}


def summary_line(v: dict[str, Any]) -> str:
    """One line saying whether each target is met."""
    if not v["run"]:
        return f"targets are set for {v['size']:,} scenes, which this run did not include"
    def mark(ok: bool) -> str:
        return "[green]met[/green]" if ok else "[red]MISSED[/red]"

    return (f"targets at {v['size']:,} scenes: p50 {v['p50_ms']['value']:.2f} ms <= "
            f"{v['p50_ms']['target']:g} ms {mark(v['p50_ms']['met'])}; recall@10 "
            f"{v['recall_at_10']['value']:.3f} >= {v['recall_at_10']['target']:g} "
            f"{mark(v['recall_at_10']['met'])}; {v['speedup']['value']:.0f}x exact >= "
            f"{v['speedup']['target']:g}x {mark(v['speedup']['met'])}")


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help=f"archive sizes (default {' '.join(map(str, SIZES))})")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {' and '.join(f'{s:,}' for s in QUICK_SIZES)} scenes")
    parser.add_argument("--queries", type=int, default=300, help="queries per size")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="FAISS, BLAS and torch threads (default: all cores)")
    parser.add_argument("--no-text", action="store_true",
                        help="skip the text tower (no latency with text encoding)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/retrieval-cpu.json"))
    args = parser.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    console = Console(width=None if Console().is_terminal else 220)
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    limits = threadpool_limits(args.threads, user_api="blas") if threadpool_limits else None

    with console.status(f"loading {MODEL} (its width sets D; its text tower encodes)"):
        encode, dim, load_s = text_encoder()
    info = {**machine(args.threads), "model": MODEL, "dim": dim, "queries": args.queries,
            "k": K, "sizes": list(sizes), "text_tower_load_s": load_s}
    world = make_world(dim)
    queries = text_like_queries(world, args.queries)
    texts = query_strings(args.queries)
    text = None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        if not args.no_text:  # each string encoded once, alone; its time joins each search
            seconds, rows = timed_each(encode, texts, progress, "encoding query strings",
                                       len(texts))
            text = (seconds, np.concatenate(rows))  # (Q,), (Q, D)
            info["text_encode"] = percentiles_ms(seconds)
        for n in sizes:
            results.append(run_size(n, world, queries, text, progress, args.out.parent))
            console.print(f"{n:,} scenes done: index p50 {results[-1]['index']['p50_ms']:.2f} "
                          f"ms, recall@10 {results[-1]['recall_at_10']:.3f}")
    render(results, info, console)
    outcome = verdict(results)
    payload = {"machine": info, "targets": TARGET, "results": results, "verdict": outcome}
    atomic_write_bytes(args.out, json.dumps(payload, indent=2, default=float).encode())
    console.print(f"wrote {args.out}")
    console.print(summary_line(outcome))
    if limits is not None:
        limits.restore_original_limits()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
