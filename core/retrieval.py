"""An embedding index over FAISS with a metadata table, saved and loaded atomically.

Rows are L2-normalised embeddings (normalised on the way in unless told otherwise), so
inner product is cosine similarity. Exact search (``IndexFlat``) below a size threshold,
IVF above it; IVF-PQ on request when memory matters. A boolean mask over rows (metadata
filters) is applied before ranking, so ``k`` results come back whenever ``k`` rows match.

On disk an index is a folder: ``index.faiss`` (``faiss.write_index``),
``metadata.parquet`` (GeoParquet when the table is a GeoDataFrame) and ``manifest.json``
(configuration, row count, sizes and SHA-256 of the other two files). The folder is
written under a temporary name and swapped into place, and loading verifies the manifest,
so a partial or damaged index is refused instead of half-read. Nothing is pickled.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from core.atomic import atomic_replace_dir
from core.checksums import sha256_file

FORMAT_VERSION = 1
INDEX_FILE, METADATA_FILE, MANIFEST_FILE = "index.faiss", "metadata.parquet", "manifest.json"
KINDS = ("auto", "exact", "ivf", "ivfpq")
METRICS = ("ip", "l2")
_CHUNK_ELEMENTS = 1 << 24  # brute-force score matrices are computed ~16M entries at a time
MIN_NPROBE = 16  # IVF cells visited by default, at least (see default_nprobe)


def default_nlist(n: int) -> int:
    """IVF cells for ``n`` rows by default: about sqrt(n), at most n / 39.

    Building costs O(n * nlist) (k-means on the training sample, then assigning every row
    to its nearest cell), a query O(nlist + nprobe * n / nlist). FAISS's usual 4-16
    sqrt(n) makes cells smaller, but the same recall then needs proportionally more of them
    probed, so search is hardly faster while building is several times slower: at 10^6 x
    384 on 2 CPU cores, sqrt(n) builds in ~30 s, 4 sqrt(n) (with 64 training rows per
    cell) in ~4.5 min (docs/benchmarks.md). The cap keeps >= 39 training rows per cell,
    the fewest FAISS's k-means accepts without a warning.
    """
    return max(1, min(round(math.sqrt(n)), n // 39))


def default_nprobe(nlist: int) -> int:
    """IVF cells visited per query by default: 1/64 of them, at least 16 (or all).

    A query's true neighbours spread over a number of cells that grows with ``nlist``, so
    a fixed fraction keeps recall steady as archives grow; with nlist ~ sqrt(n) a query
    scans ~16 sqrt(n) rows (16k at 10^6, a few ms on one core). On the clustered,
    text-query benchmark (benchmarks/retrieval.py) recall@10 is >= 0.99 at 10^5 and 10^6
    rows; data whose neighbours straddle more cells may need ``nprobe`` raised.
    """
    return min(nlist, max(MIN_NPROBE, nlist // 64))


def default_train_size(n: int, nlist: int) -> int:
    """Rows sampled to train IVF/PQ: 64 per cell, at least 65 536, at most ``n``."""
    return min(n, max(64 * nlist, 65_536))


class IndexLoadError(ValueError):
    """A saved index is missing, partial or damaged."""


def _as_float32(vectors: Any, dim: int, what: str, allow_1d: bool = False) -> np.ndarray:
    """(N, D) float32 C-contiguous copy of numpy/torch input of any float dtype."""
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().cpu().float().numpy()
    array = np.array(vectors, dtype=np.float32, order="C")  # a copy: normalised in place
    if allow_1d and array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"{what} must be (N, {dim}), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return array


def _concat_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack metadata frames; the result stays a GeoDataFrame if any part is one."""
    frames = [f for f in frames if len(f) or len(f.columns)]
    if not frames:
        return pd.DataFrame()
    result = pd.concat(frames, ignore_index=True)
    geo = next((f for f in frames if hasattr(f, "crs") and hasattr(f, "set_geometry")), None)
    if geo is not None and type(result) is not type(geo):
        result = type(geo)(result, geometry=geo.geometry.name, crs=geo.crs)
    return result


class EmbeddingIndex:
    """Vectors plus one metadata row per vector, searchable by similarity with filters.

    Args:
        dim: Embedding width D.
        metric: ``"ip"`` (inner product; cosine on normalised rows; higher is better) or
            ``"l2"`` (squared Euclidean distance; lower is better).
        exact_threshold: Row count from which ``kind="auto"`` builds an IVF index.
        nlist: IVF cells (default ~sqrt(N), at most N / 39 so each cell trains well; see
            :func:`default_nlist`).
        pq_m: PQ sub-quantisers (bytes per vector at 8 bits) for ``ivfpq``; must divide
            ``dim``; default the largest divisor of ``dim`` not above ``dim // 8``.
        nprobe: Cells visited per query (default max(16, nlist // 64), at most nlist; see
            :func:`default_nprobe`). :meth:`search` can override it per call.
        kind: ``"auto"`` (exact below ``exact_threshold`` rows, ``ivf`` from it),
            ``"exact"``, ``"ivf"`` (IVF-Flat) or ``"ivfpq"`` (IVF-PQ, compressed).
        normalize: L2-normalise vectors and queries before use.
        refine: For ``ivfpq``, re-rank ``refine * k`` candidates with exact vectors (kept in
            memory next to the codes); 0 keeps only the compressed codes.
        pq_bits: Bits per PQ code (fewer are used when there are too few rows to train).
        train_size: Rows sampled to train IVF/PQ (default max(64 * nlist, 65 536), at most
            N).
        brute_force_rows: With a mask selecting at most this many rows, an IVF index
            ranks them exactly: ``ivf`` visits every cell, ``ivfpq`` scores the stored
            vectors (PQ-decoded ones without ``refine``) by brute force.
    """

    def __init__(self, dim: int, metric: str = "ip", exact_threshold: int = 100_000,
                 nlist: int | None = None, pq_m: int | None = None, nprobe: int | None = None,
                 kind: str = "auto", *, normalize: bool = True, refine: int = 0,
                 pq_bits: int = 8, train_size: int | None = None,
                 brute_force_rows: int = 20_000) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; known: {', '.join(KINDS)}")
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim}")
        if pq_m is not None and dim % pq_m:
            raise ValueError(f"pq_m={pq_m} must divide dim={dim}")
        self.dim, self.metric, self.kind = int(dim), metric, kind
        self.config: dict[str, Any] = {
            "dim": self.dim, "metric": metric, "exact_threshold": exact_threshold,
            "nlist": nlist, "pq_m": pq_m, "nprobe": nprobe, "kind": kind,
            "normalize": normalize, "refine": refine, "pq_bits": pq_bits,
            "train_size": train_size, "brute_force_rows": brute_force_rows}
        self.index: faiss.Index | None = None
        self.built: dict[str, Any] = {}  # kind and parameters of the FAISS index as built
        self._pending: list[np.ndarray] = []
        self._pending_rows: list[pd.DataFrame] = []
        self._metadata = pd.DataFrame()
        #: Free-form JSON information saved in the manifest (what built the vectors, ...).
        self.info: dict[str, Any] = {}

    def __len__(self) -> int:
        built = self.index.ntotal if self.index is not None else 0
        return built + sum(len(v) for v in self._pending)

    def _kind_for(self, n: int) -> str:
        if self.kind != "auto":
            return self.kind
        return "exact" if n < self.config["exact_threshold"] else "ivf"

    @property
    def built_kind(self) -> str:
        """The kind of FAISS index searched (``auto`` resolved for the current size)."""
        return self._kind_for(len(self))

    def add(self, vectors: Any, metadata: pd.DataFrame | list[dict] | None = None) -> None:
        """Add vectors and their metadata rows (searchable after the next :meth:`build`).

        Args:
            vectors: (N, D) float32/float16/float64 numpy array or torch tensor.
            metadata: N rows (a DataFrame or GeoDataFrame, or a list of dicts); None for
                rows without metadata.
        """
        array = _as_float32(vectors, self.dim, "vectors")  # (N, D)
        if self.config["normalize"]:
            array /= np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)
        if metadata is None:
            rows = pd.DataFrame(index=pd.RangeIndex(len(array)))
        elif isinstance(metadata, pd.DataFrame):
            rows = metadata.reset_index(drop=True)
        else:
            rows = pd.DataFrame(list(metadata))
        if len(rows) != len(array):
            raise ValueError(f"{len(array)} vectors but {len(rows)} metadata rows")
        self._pending.append(array)
        self._pending_rows.append(rows)

    def build(self) -> EmbeddingIndex:
        """Make every added vector searchable, (re)training the FAISS index when needed.

        Returns:
            This index.
        """
        if self.index is not None and not self._pending:
            return self
        # The pending arrays are private copies: a single one is used as is, not copied again.
        new = self._pending[0] if len(self._pending) == 1 else \
            np.concatenate(self._pending) if self._pending else np.zeros((0, self.dim), np.float32)
        total, kind = len(self), self._kind_for(len(self))
        retrain = (kind != "exact" and total > 4 * self.built.get("trained_on", total)
                   and (self.built["kind"] == "ivf" or self.config["refine"]))
        if self.index is not None and self.built["kind"] == kind and not retrain:
            self.index.add(new)
        else:
            vectors = new if self.index is None or self.index.ntotal == 0 else \
                np.concatenate([self.index.reconstruct_n(0, self.index.ntotal), new])  # (N, D)
            self.index = self._new_index(kind, vectors)
            self.index.add(vectors)
        # Column-less frames (rows added without metadata) still count their rows.
        self._metadata = _concat_rows([self._metadata, *self._pending_rows])
        self._pending, self._pending_rows = [], []
        return self

    def _new_index(self, kind: str, vectors: np.ndarray) -> faiss.Index:
        """An empty FAISS index of ``kind``, trained on (a sample of) ``vectors``."""
        c, n = self.config, len(vectors)
        faiss_metric = faiss.METRIC_INNER_PRODUCT if self.metric == "ip" else faiss.METRIC_L2
        if kind == "exact":
            self.built = {"kind": kind}
            return faiss.IndexFlat(self.dim, faiss_metric)
        nlist = c["nlist"] or default_nlist(n)
        if nlist > n:
            raise ValueError(f"cannot train {nlist} IVF cells on {n} vectors")
        quantizer = faiss.IndexFlat(self.dim, faiss_metric)
        self.built = {"kind": kind, "nlist": nlist, "trained_on": n}
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss_metric)
        else:
            m = c["pq_m"] or max(d for d in range(1, max(self.dim // 8, 1) + 1)
                                 if self.dim % d == 0)
            bits = max(1, min(c["pq_bits"], int(math.log2(max(n // 39, 2)))))
            index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, m, bits, faiss_metric)
            self.built.update(pq_m=m, pq_bits=bits)
        size = min(n, c["train_size"] or default_train_size(n, nlist))
        sample = vectors[np.sort(np.random.default_rng(0).permutation(n)[:size])]
        index.train(sample)
        index.nprobe = min(nlist, c["nprobe"] or default_nprobe(nlist))
        index.make_direct_map()  # row -> vector, for exact search over filtered rows
        self.built["nprobe"] = index.nprobe
        if kind == "ivfpq" and c["refine"]:
            index = faiss.IndexRefineFlat(index)
            index.k_factor = float(c["refine"])
        return index

    @property
    def metadata(self) -> pd.DataFrame:
        """The metadata table (a DataFrame or GeoDataFrame); row i describes vector i."""
        self.build()
        return self._metadata

    def _ivf(self) -> faiss.IndexIVF | None:
        index = self.index
        if isinstance(index, faiss.IndexRefine):
            index = faiss.downcast_index(index.base_index)
        return index if isinstance(index, faiss.IndexIVF) else None

    def search(self, queries: Any, k: int, mask: np.ndarray | None = None,
               nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows for each query, optionally among the rows where ``mask`` is true.

        Args:
            queries: (Q, D) or (D,) query vectors (numpy or torch, any float dtype).
            k: Results per query.
            mask: (N,) boolean filter over rows, applied before ranking: ``k`` results come
                back whenever at least ``k`` rows are selected.
            nprobe: Override the IVF cells visited for this search.

        Returns:
            Scores (Q, k) float32 and row ids (Q, k) int64, best first. Where fewer than k
            rows qualify, ids are -1 and scores -inf (``ip``) or +inf (``l2``).
        """
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        self.build()
        query = _as_float32(queries, self.dim, "queries", allow_1d=True)  # (Q, D)
        if self.config["normalize"]:
            query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        n, k = len(self), int(k)
        if mask is None:
            scores, ids = self._faiss_search(query, k, None, nprobe)
            return self._finish(scores, ids)
        mask = np.asarray(mask)
        if mask.shape != (n,) or mask.dtype != bool:
            raise ValueError(f"mask must be a boolean array of shape ({n},), got "
                             f"{mask.dtype} {mask.shape}")
        allowed = np.flatnonzero(mask)  # (M,)
        ivf = self._ivf()
        few = ivf is not None and len(allowed) <= self.config["brute_force_rows"]
        if few and self.built_kind == "ivfpq":
            return self._brute_force(query, k, allowed)  # on stored vectors, not PQ tables
        if few:
            nprobe = ivf.nlist  # few rows selected: visit every cell, exact over them
        bitmap = np.packbits(mask, bitorder="little")  # referenced until the search ends
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        scores, ids = self._faiss_search(query, k, selector, nprobe)
        short = (ids < 0).any(1)  # IVF cells visited held fewer than k selected rows
        if short.any() and ivf is not None and (nprobe or ivf.nprobe) < ivf.nlist:
            scores[short], ids[short] = self._faiss_search(query[short], k, selector, ivf.nlist)
        return self._finish(scores, ids)

    def _faiss_search(self, query: np.ndarray, k: int, selector: faiss.IDSelector | None,
                      nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
        ivf = self._ivf()
        if ivf is None:
            params = faiss.SearchParameters()
        else:
            params = faiss.SearchParametersIVF()
            params.nprobe = min(ivf.nlist, nprobe or ivf.nprobe)
        if selector is not None:
            params.sel = selector
        if isinstance(self.index, faiss.IndexRefine):
            params = faiss.IndexRefineSearchParameters(k_factor=self.index.k_factor,
                                                       base_index_params=params)
        return self.index.search(query, k, params=params)

    def _finish(self, scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = scores.astype(np.float32, copy=True)
        scores[ids < 0] = -np.inf if self.metric == "ip" else np.inf
        return scores, ids.astype(np.int64, copy=False)

    def _brute_force(self, query: np.ndarray, k: int, allowed: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the ``allowed`` rows (ties by row id)."""
        vectors = self.index.reconstruct_batch(allowed) if len(allowed) \
            else np.zeros((0, self.dim), np.float32)  # (M, D)
        top = min(k, len(allowed))
        scores = np.zeros((len(query), k), np.float32)
        ids = np.full((len(query), k), -1, np.int64)
        step = max(1, _CHUNK_ELEMENTS // max(len(allowed), 1))
        for start in range(0, len(query), step):
            part = query[start:start + step] @ vectors.T  # (q, M)
            if self.metric == "l2":
                part = ((query[start:start + step] ** 2).sum(1, keepdims=True)
                        + (vectors ** 2).sum(1)[None, :] - 2 * part)
            order = np.argsort(-part if self.metric == "ip" else part, axis=1,
                               kind="stable")[:, :top]
            scores[start:start + step, :top] = np.take_along_axis(part, order, axis=1)
            ids[start:start + step, :top] = allowed[order]
        return self._finish(scores, ids)

    def save(self, folder: str | Path) -> Path:
        """Write the index folder atomically, replacing any index already there.

        :attr:`info` is stored in the manifest and comes back with :meth:`load`.

        Args:
            folder: Destination folder (created; an existing one is replaced as a whole).

        Returns:
            The folder.
        """
        self.build()
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            # A GeoDataFrame's to_parquet writes GeoParquet (geometry as WKB + "geo" metadata).
            self._metadata.to_parquet(tmp / METADATA_FILE, index=False)
            manifest = {
                "format_version": FORMAT_VERSION, "count": len(self), "config": self.config,
                "built": self.built, "faiss_version": faiss.__version__, "info": self.info,
                "files": {name: {"sha256": sha256_file(tmp / name),
                                 "bytes": (tmp / name).stat().st_size}
                          for name in (INDEX_FILE, METADATA_FILE)}}
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True,
                                                        default=lambda value: value.item()))
            return atomic_replace_dir(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: str | Path) -> EmbeddingIndex:
        """Load an index written by :meth:`save`, refusing a partial or damaged one.

        Args:
            folder: The index folder.

        Returns:
            The index, ready to search.

        Raises:
            IndexLoadError: The folder, the manifest or a file is missing, a file's size
                or checksum differs from the manifest, or the row counts disagree.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise IndexLoadError(f"{folder}: no index folder here")
        manifest_path = folder / MANIFEST_FILE
        if not manifest_path.is_file():
            raise IndexLoadError(f"{folder}: not a complete index ({MANIFEST_FILE} is missing)")
        try:
            manifest = json.loads(manifest_path.read_text())
            version, count, files = (manifest["format_version"], int(manifest["count"]),
                                     manifest["files"])
            entries = {name: {"sha256": str(files[name]["sha256"]),
                              "bytes": int(files[name]["bytes"])}
                       for name in (INDEX_FILE, METADATA_FILE)}
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError,
                ValueError) as error:
            raise IndexLoadError(f"{folder}: damaged {MANIFEST_FILE} ({error!r})") from error
        if version != FORMAT_VERSION:
            raise IndexLoadError(f"{folder}: index format version {version}; this version "
                                 f"of mosaic-vlm reads {FORMAT_VERSION}")
        for name, entry in entries.items():
            path = folder / name
            if not path.is_file():
                raise IndexLoadError(f"{folder}: index is incomplete ({name} is missing)")
            if path.stat().st_size != entry["bytes"]:
                raise IndexLoadError(f"{folder}: {name} has {path.stat().st_size} bytes, the "
                                     f"manifest says {entry['bytes']} (truncated or damaged)")
            if sha256_file(path) != entry["sha256"]:
                raise IndexLoadError(f"{folder}: checksum mismatch for {name} (damaged file)")
        try:
            index = cls(**manifest["config"])
        except (TypeError, ValueError) as error:
            raise IndexLoadError(f"{folder}: damaged {MANIFEST_FILE} ({error})") from error
        index.index, index.built = faiss.read_index(str(folder / INDEX_FILE)), manifest["built"]
        if index.index.ntotal != count or index.index.d != index.dim:
            raise IndexLoadError(f"{folder}: count mismatch: {INDEX_FILE} holds "
                                 f"{index.index.ntotal} vectors of width {index.index.d}, "
                                 f"the manifest says {count} of width {index.dim}")
        metadata_path = folder / METADATA_FILE
        schema_metadata = pq.read_schema(metadata_path).metadata or {}
        if b"geo" in schema_metadata:
            import geopandas

            metadata = geopandas.read_parquet(metadata_path)
        else:
            metadata = pd.read_parquet(metadata_path)
        if len(metadata.columns) == 0:
            metadata = pd.DataFrame(index=pd.RangeIndex(count))
        if len(metadata) != count:
            raise IndexLoadError(f"{folder}: count mismatch: {METADATA_FILE} has "
                                 f"{len(metadata)} rows, the manifest says {count}")
        index._metadata = metadata
        index.info = dict(manifest.get("info") or {})
        return index
