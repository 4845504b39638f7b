"""The published CrisisLandMark retrieval benchmark: ``queries.jsonl`` + ``qrels/``, scored.

``python -m domains.remote_sensing.benchmark RUN --archive PATH`` embeds the archive's
corpus split (the card's corpus set, ``split: test``) with a trained run, ranks it for
every published query and writes ``RUN/eval/crisislandmark-benchmark/metrics.json``
(atomically; ``--out`` elsewhere). Figures computed this way are comparable with the
CLOSP paper's because the queries and the relevance judgements are the release's own,
not ones we made up.

The files (the dataset card: "The *queries.jsonl* file contains the queries and their
IDs. The qrels for each query can be found in the *qrels* folder"), read in the BEIR
conventions such a pair of names follows:

- ``queries.jsonl``: one JSON object per line with the query id (``_id``, ``id``,
  ``query_id`` or ``query-id``) and its text (``text`` or ``query``);
- ``qrels/``: every ``.tsv`` / ``.csv`` / ``.txt`` file with the columns query id, corpus
  id (the sample key) and score (``query-id corpus-id score`` with a header, or TREC's
  ``qid 0 docid score`` without one), and every ``.jsonl`` file of such objects. A file
  whose rows lack the query id holds one query's judgements and is named by its id.

Metrics (every one from :mod:`core.metrics`; the ranking from :mod:`core.retrieval`):

- **nDCG@k** (k = 10, 100, 1000; the paper's headline is nDCG@1000): graded gain equal to
  the qrels score (CLOSP's relevance: the number of labels a query and a sample share),
  discount 1 / log2(rank + 1), normalised by the ideal ordering of all judged samples of
  the query found in the corpus (:func:`core.metrics.ndcg_at_k`);
- **R@k** (k = 1, 10, 100, 1000): the share of queries with at least one relevant sample in
  the top k — the Recall@k of cross-modal retrieval papers, CLOSP's included
  (:func:`core.metrics.recall_at_k`); ``recall_fraction@k`` gives the share of each
  query's relevant samples found (:func:`core.metrics.recall_fraction_at_k`).

Each is reported for the unified corpus (Sentinel-1 and Sentinel-2 ranked together, as
CLOSP retrieves) and per sensor. Queries with no judged sample in the (scored) corpus are
left out and counted; judged samples the corpus lacks (bad samples skipped while reading)
are counted as ``unmatched_judgements``. The exact top-k comes from an exact
:class:`~core.retrieval.EmbeddingIndex`; a query's judged samples ranked below the
largest k enter only the ideal DCG and the recall denominators.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from core.atomic import atomic_write_bytes
from core.cli import run_cli
from core.inference import embed_batches
from core.metrics import ndcg_at_k, recall_at_k, recall_fraction_at_k
from core.retrieval import EmbeddingIndex
from core.transforms import Compose, ResizeImage
from domains.remote_sensing import cards
from domains.remote_sensing.archives import open_dataset
from domains.remote_sensing.run_model import SceneRun

LAYOUT = "crisislandmark"
FOLDER = "crisislandmark-benchmark"
_QUERY_ID = ("_id", "id", "query_id", "query-id", "qid")
_QUERY_TEXT = ("text", "query")
_CORPUS_ID = ("corpus-id", "corpus_id", "doc_id", "docid", "key", "corpus")
_SCORE = ("score", "relevance", "rel")
#: Cells of the (queries, ranked samples) matrices scored at once.
_CHUNK_ELEMENTS = 4_000_000
_METRICS = {"ndcg": ndcg_at_k, "recall": recall_at_k, "recall_fraction": recall_fraction_at_k}


def _field(record: Mapping[str, Any], names: Sequence[str]) -> Any:
    return next((record[n] for n in names if n in record), None)


def read_queries(path: str | Path) -> dict[str, str]:
    """Query id -> text from a ``queries.jsonl`` file.

    Raises:
        FileNotFoundError: When the file is missing.
        ValueError: Naming the file and line of a malformed or incomplete record.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: benchmark queries not found")
    queries: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not JSON ({error})") from error
        query_id, text = _field(record, _QUERY_ID), _field(record, _QUERY_TEXT)
        if query_id is None or not isinstance(text, str):
            raise ValueError(f"{path}:{number}: expected a query id ({'/'.join(_QUERY_ID)}) "
                             f"and a text ({'/'.join(_QUERY_TEXT)})")
        queries[str(query_id)] = text
    if not queries:
        raise ValueError(f"{path}: no queries")
    return queries


def _table_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of one qrels table as dicts (header or TREC's 4 / 3 bare columns)."""
    text = path.read_text()
    delimiter = "\t" if "\t" in text else ("," if path.suffix == ".csv" else None)
    lines = [line for line in text.splitlines() if line.strip()]
    cells = [next(csv.reader([line], delimiter=delimiter)) if delimiter else line.split()
             for line in lines]
    header = [c.strip().lower() for c in cells[0]] if cells else []
    if any(h in _CORPUS_ID for h in header):
        return [dict(zip(header, row, strict=False)) for row in cells[1:]]
    rows = []
    for row in cells:
        if len(row) == 4:  # TREC: query iteration document relevance
            rows.append({"query-id": row[0], "corpus-id": row[2], "score": row[3]})
        elif len(row) == 3:
            rows.append({"query-id": row[0], "corpus-id": row[1], "score": row[2]})
        elif len(row) == 2:
            rows.append({"corpus-id": row[0], "score": row[1]})
        else:
            raise ValueError(f"{path}: cannot read qrels line {row!r} (expected query id, "
                             "corpus id, score)")
    return rows


def read_qrels(folder: str | Path) -> dict[str, dict[str, float]]:
    """Query id -> {corpus id: score} from every judgement file of a ``qrels/`` folder.

    Raises:
        FileNotFoundError: When the folder is missing or holds no judgement file.
        ValueError: Naming the file of a malformed row.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*") if p.suffix in (".tsv", ".csv", ".txt", ".jsonl")) \
        if folder.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{folder}: no qrels files (.tsv, .csv, .txt, .jsonl)")
    qrels: dict[str, dict[str, float]] = {}
    for path in files:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] \
            if path.suffix == ".jsonl" else _table_rows(path)
        for row in rows:
            query_id = _field(row, _QUERY_ID)
            query_id = path.stem if query_id is None else str(query_id)
            corpus_id, score = _field(row, _CORPUS_ID), _field(row, _SCORE)
            try:
                value = float(1.0 if score is None else score)
            except ValueError as error:
                raise ValueError(f"{path}: score {score!r} is not a number") from error
            if corpus_id is None:
                raise ValueError(f"{path}: a row without a corpus id: {row}")
            qrels.setdefault(query_id, {})[str(corpus_id)] = value
    return qrels


def benchmark_metrics(queries: torch.Tensor, corpus: torch.Tensor, corpus_ids: Sequence[str],
                      query_ids: Sequence[str], qrels: Mapping[str, Mapping[str, float]],
                      ndcg_k: Sequence[int] = (10, 100, 1000),
                      recall_k: Sequence[int] = (1, 10, 100, 1000)) -> dict[str, Any]:
    """nDCG@k and R@k of a text-to-image ranking judged by published qrels.

    Args:
        queries: (Q, D) query embeddings.
        corpus: (N, D) corpus embeddings (same space; normalised inside).
        corpus_ids: The N corpus ids (sample keys).
        query_ids: The Q query ids.
        qrels: Query id -> {corpus id: graded relevance}.
        ndcg_k: Cut-offs of nDCG.
        recall_k: Cut-offs of R@k and recall_fraction@k.

    Returns:
        ``ndcg@k``, ``recall@k``, ``recall_fraction@k`` (NaN when no query is judged),
        ``scored_queries`` (queries with a relevant sample in the corpus), ``corpus``
        (N) and ``unmatched_judgements`` (judged ids not in the corpus).
    """
    position = {cid: i for i, cid in enumerate(corpus_ids)}
    judged = [{position[c]: s for c, s in qrels.get(q, {}).items() if c in position and s > 0}
              for q in query_ids]
    unmatched = sum(c not in position for q in query_ids for c in qrels.get(q, {}))
    top = min(max(*ndcg_k, *recall_k), len(corpus_ids))
    if top == 0:
        nan = float("nan")
        return {**{f"ndcg@{k}": nan for k in ndcg_k}, **{f"recall@{k}": nan for k in recall_k},
                **{f"recall_fraction@{k}": nan for k in recall_k}, "scored_queries": 0,
                "corpus": 0, "unmatched_judgements": unmatched}
    index = EmbeddingIndex(corpus.shape[1], metric="ip", kind="exact")
    index.add(corpus)
    scores, ids = index.search(queries, top)  # (Q, top) best first
    names = [f"ndcg@{k}" for k in ndcg_k] + [f"{m}@{k}" for k in recall_k
                                             for m in ("recall", "recall_fraction")]
    sums, counts = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0)
    start = 0
    while start < len(query_ids):  # chunks of about _CHUNK_ELEMENTS matrix cells
        stop, widest = start, top
        while stop < len(query_ids):
            width = max(widest, top + len(judged[stop]))
            if stop > start and (stop - start + 1) * width > _CHUNK_ELEMENTS:
                break
            widest, stop = width, stop + 1
        similarity, relevance = _ranked_rows(judged[start:stop], scores[start:stop],
                                             ids[start:stop], top)  # (q, W) each
        scored = int(sum(bool(r) for r in judged[start:stop]))
        for name in names:
            metric, k = name.split("@")
            value = _METRICS[metric](similarity, relevance, int(k))
            if scored and not np.isnan(value):
                sums[name] += value * scored
                counts[name] += scored
        start = stop
    result: dict[str, Any] = {name: sums[name] / counts[name] if counts[name] else float("nan")
                              for name in names}
    result |= {"scored_queries": int(sum(bool(r) for r in judged)), "corpus": len(corpus_ids),
               "unmatched_judgements": int(unmatched)}
    return result


def _ranked_rows(judged: Sequence[dict[int, float]], scores: np.ndarray, ids: np.ndarray,
                 top: int) -> tuple[np.ndarray, np.ndarray]:
    """(q, W) similarity and relevance: the top-ranked samples, then the judged ones below.

    Judged samples ranked past ``top`` get similarity -inf: they follow the cut-off, so they
    count in the ideal DCG and the recall denominators but never inside the top ``top``.
    """
    below = []  # per query: judged samples ranked past the largest cut-off
    for rel, row in zip(judged, ids, strict=True):
        retrieved = set(row.tolist())
        below.append([i for i in rel if i not in retrieved])
    width = top + max((len(b) for b in below), default=0)
    similarity = np.full((len(judged), width), -np.inf, dtype=np.float64)  # (q, W)
    relevance = np.zeros((len(judged), width), dtype=np.float64)  # (q, W)
    similarity[:, :top] = scores
    for q, (rel, row, past) in enumerate(zip(judged, ids, below, strict=True)):
        relevance[q, :top] = [rel.get(int(i), 0.0) for i in row]
        relevance[q, top:top + len(past)] = [rel[i] for i in past]
    return similarity, relevance


def embed_corpus(run: SceneRun, archive: Path, split: str, batch_size: int = 64,
                 num_workers: int = 0) -> dict[str, tuple[torch.Tensor, list[str], list]]:
    """Embed each sensor's corpus split with the run: sensor -> (features, ids, bad samples).

    Samples are prepared as training prepared them (the run's normalisation, resized to
    its input). A bad sample is skipped (its lazily read substitute is scored once).
    """
    found = {}
    for sensor in run.sensors:
        resize = ResizeImage(run.image_size) if run.image_size else None
        dataset = open_dataset(archive, LAYOUT, sensor, split, run.bands[sensor],
                               Compose(run.transforms[sensor], resize))
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                            num_workers=num_workers)
        embedded = embed_batches(run.model, loader, {sensor: "image"}, keep=["id"])
        ids = [str(i) for i in embedded["id"]]
        first = sorted({cid: i for i, cid in reversed(list(enumerate(ids)))}.values())
        features = embedded[sensor] if ids else torch.zeros(0, run.model.embed_dim)
        found[sensor] = (features[first], [ids[i] for i in first], list(dataset.bad_samples))
    return found


def run_benchmark(run: str | Path, archive: str | Path, variant: str = "main",
                  split: str | None = None, batch_size: int = 64, num_workers: int = 0,
                  out: str | Path | None = None, device: str = "cpu") -> dict[str, Any]:
    """Score a trained run on the published CrisisLandMark benchmark and write the metrics.

    Args:
        run: The run folder (written by ``domains.remote_sensing.train``).
        archive: The CrisisLandMark root (with ``queries.jsonl`` and ``qrels/``).
        variant: ``main`` or a companion.
        split: The corpus split (default: the card's, ``test`` — the corpus set).
        batch_size: Scenes per forward pass.
        num_workers: DataLoader workers.
        out: Where to write (default ``RUN/eval/crisislandmark-benchmark/``; a companion's
            metrics go to ``metrics-<variant>.json``).
        device: Where to run the model.

    Returns:
        The metrics written: per scope (``all``, ``s2``, ``s1``) the figures of
        :func:`benchmark_metrics`, plus the files, counts and bad samples.
    """
    archive = Path(archive)
    settings = cards.card(LAYOUT)["benchmark"]
    queries = read_queries(archive / settings["queries_file"])
    qrels = read_qrels(archive / settings["qrels_folder"])
    split = split or settings["split"]
    loaded = SceneRun.load(run, variant, device=device)
    query_ids = list(queries)
    texts = [queries[q] for q in query_ids]
    text = torch.cat([loaded.embed_text(texts[i:i + 256]) for i in range(0, len(texts), 256)])
    corpus = embed_corpus(loaded, archive, split, batch_size, num_workers)
    ks = {"ndcg_k": settings["ndcg_k"], "recall_k": settings["recall_k"]}
    scopes = {"all": (torch.cat([c[0] for c in corpus.values()]),
                      [i for c in corpus.values() for i in c[1]])}
    scopes |= {sensor: (c[0], c[1]) for sensor, c in corpus.items()}
    metrics: dict[str, Any] = {
        "benchmark": "CrisisLandMark queries.jsonl + qrels/", "archive": str(archive),
        "split": split, "variant": variant, "run_fingerprint": loaded.fingerprint,
        "n_queries": len(query_ids), "judged_queries": sum(q in qrels for q in query_ids),
        "bad_samples": [list(b) for c in corpus.values() for b in c[2]],
    }
    for scope, (features, ids) in scopes.items():
        metrics[scope] = benchmark_metrics(text, features, ids, query_ids, qrels, **ks)
        if scope != "all":  # the other sensor's samples are not missing
            del metrics[scope]["unmatched_judgements"]
    folder = Path(out) if out is not None else Path(run) / "eval" / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = "metrics.json" if variant == "main" else f"metrics-{variant}.json"
    atomic_write_bytes(folder / name, json.dumps(metrics, indent=2).encode())
    metrics["written"] = str(folder / name)
    return metrics


def main(argv: list[str] | None = None) -> Path:
    """Command line: score RUN on the benchmark of ``--archive``; return the metrics file."""
    parser = argparse.ArgumentParser(
        prog="python -m domains.remote_sensing.benchmark",
        description="Score a trained run on the published CrisisLandMark retrieval benchmark "
                    "(queries.jsonl + qrels/): nDCG@k and R@k, unified and per sensor.")
    parser.add_argument("run", type=Path, help="run folder written by train")
    parser.add_argument("--archive", type=Path, required=True, help="CrisisLandMark root")
    parser.add_argument("--variant", default="main", help="main or a companion's name")
    parser.add_argument("--split", help="corpus split (default: test, the corpus set)")
    parser.add_argument("--batch-size", type=int, default=64, help="scenes per forward pass")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    parser.add_argument("--out", type=Path,
                        help=f"where to write (default: RUN/eval/{FOLDER}/)")
    args = parser.parse_args(argv)
    metrics = run_benchmark(args.run, args.archive, args.variant, args.split, args.batch_size,
                            args.num_workers, args.out, args.device)
    for scope in ("all", *(s for s in ("s2", "s1") if s in metrics)):
        figures = metrics[scope]
        print(f"{scope:>3}: " + "  ".join(f"{k} {figures[k]:.3f}" for k in figures
                                          if k.startswith(("ndcg@", "recall@"))))
    print(f"metrics: {metrics['written']}")
    return Path(metrics["written"])


if __name__ == "__main__":
    run_cli(main)
