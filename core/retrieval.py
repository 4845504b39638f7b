"""An embedding index over FAISS with a metadata table, saved and loaded atomically.

Exact inner-product search below a size threshold; IVF (flat or PQ) above it. Rows
are L2-normalised embeddings, so inner product is cosine similarity. A boolean mask
over rows (metadata filters) is applied before ranking, so ``k`` results come back
whenever ``k`` rows match.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
import torch

from core.atomic import atomic_replace_dir

FORMAT_VERSION = 1
INDEX_FILE, METADATA_FILE, MANIFEST_FILE = "index.faiss", "metadata.parquet", "manifest.json"
KINDS = ("auto", "exact", "ivf", "ivfpq")


def _as_float32(vectors: Any, dim: int, what: str) -> np.ndarray:
    array = vectors.detach().cpu().float().numpy() if isinstance(vectors, torch.Tensor) \
        else np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"{what} must be (N, {dim}), got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class EmbeddingIndex:
    """Vectors plus one metadata row per vector, searchable by inner product.

    Args:
        dim: Embedding width.
        kind: ``"auto"`` (exact below ``exact_threshold`` rows, IVF-PQ above), ``"exact"``,
            ``"ivf"`` or ``"ivfpq"``.
        exact_threshold: Row count from which ``auto`` builds an approximate index.
        nlist: IVF cells (default ~4 sqrt(N)).
        nprobe: Cells visited per query (default max(8, nlist // 8)).
        pq_m: PQ sub-quantisers for ``ivfpq`` (default: dim // 4, dividing dim).
        refine: For ``ivfpq``, re-rank this many x k candidates exactly (0: off).
    """

    def __init__(self, dim: int, kind: str = "auto", exact_threshold: int = 100_000,
                 nlist: int | None = None, nprobe: int | None = None, pq_m: int | None = None,
                 refine: int = 4) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; known: {', '.join(KINDS)}")
        self.dim, self.kind, self.exact_threshold = dim, kind, exact_threshold
        self.params: dict[str, Any] = {"nlist": nlist, "nprobe": nprobe, "pq_m": pq_m,
                                       "refine": refine}
        self._vectors: list[np.ndarray] = []
        self._rows: list[pd.DataFrame] = []
        self.index: faiss.Index | None = None
        self._metadata: pd.DataFrame | None = None

    def __len__(self) -> int:
        return self.index.ntotal if self.index is not None else sum(len(v) for v in self._vectors)

    @property
    def built_kind(self) -> str:
        """The kind actually built (``auto`` resolved)."""
        if self.kind != "auto":
            return self.kind
        return "exact" if len(self) < self.exact_threshold else "ivfpq"

    def add(self, vectors: Any, metadata: pd.DataFrame | list[dict] | None = None) -> None:
        """Queue vectors (N, D) and their metadata rows; :meth:`build` makes them searchable."""
        array = _as_float32(vectors, self.dim, "vectors")
        rows = metadata if isinstance(metadata, pd.DataFrame) else pd.DataFrame(metadata or
                                                                                 [{}] * len(array))
        if len(rows) != len(array):
            raise ValueError(f"{len(array)} vectors but {len(rows)} metadata rows")
        self._vectors.append(array)
        self._rows.append(rows.reset_index(drop=True))
        self.index = None

    def build(self) -> EmbeddingIndex:
        """Build the FAISS index over every queued vector."""
        vectors = np.concatenate(self._vectors) if self._vectors else np.zeros((0, self.dim),
                                                                             np.float32)
        kind, n = self.built_kind, len(vectors)
        if kind == "exact" or n == 0:
            index = faiss.IndexFlatIP(self.dim)
        else:
            nlist = self.params["nlist"] or max(1, min(int(4 * math.sqrt(n)), n // 39))
            quantizer = faiss.IndexFlatIP(self.dim)
            if kind == "ivf":
                index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            else:
                m = self.params["pq_m"] or next(d for d in range(max(self.dim // 4, 1), 0, -1)
                                                if self.dim % d == 0)
                index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, m, 8,
                                         faiss.METRIC_INNER_PRODUCT)
            sample = vectors[np.random.default_rng(0).permutation(n)[: max(nlist * 64, 10_000)]]
            index.train(sample)
            index.nprobe = self.params["nprobe"] or max(8, nlist // 8)
            if kind == "ivfpq" and self.params["refine"]:
                index = faiss.IndexRefineFlat(index)
                index.k_factor = float(self.params["refine"])
        index.add(vectors)
        self.index = index
        self._enable_reconstruct()
        self._metadata = pd.concat(self._rows, ignore_index=True) if self._rows else pd.DataFrame()
        return self

    @property
    def metadata(self) -> pd.DataFrame:
        """The metadata table; row i describes vector i."""
        if self._metadata is None:
            self.build()
        return self._metadata  # type: ignore[return-value]

    def search(self, queries: Any, k: int, mask: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows for each query, optionally among the rows where ``mask`` is true.

        Args:
            queries: (Q, D) query vectors.
            k: Results per query.
            mask: (N,) boolean filter applied before ranking.

        Returns:
            Scores (Q, k) and row ids (Q, k); -inf / -1 where fewer than k rows exist.
        """
        if self.index is None:
            self.build()
        query = _as_float32(queries, self.dim, "queries")
        n = len(self)
        if mask is None:
            return self.index.search(query, k)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n,):
            raise ValueError(f"mask must have shape ({n},), got {mask.shape}")
        allowed = np.flatnonzero(mask).astype(np.int64)
        if len(allowed) <= max(4 * k, 50_000) or self.built_kind == "exact":
            return self._exact_subset(query, k, allowed)
        selector = faiss.IDSelectorBatch(allowed)
        params = faiss.SearchParametersIVF(sel=selector, nprobe=self._ivf().nprobe)
        scores, ids = self._ivf().search(query, k, params=params)
        return scores, ids

    def _enable_reconstruct(self) -> None:
        ivf = self._ivf()
        if isinstance(ivf, faiss.IndexIVF):
            ivf.make_direct_map()

    def _ivf(self) -> faiss.Index:
        index = self.index
        return faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) \
            else index

    def _exact_subset(self, query: np.ndarray, k: int, allowed: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        vectors = self.index.reconstruct_batch(allowed) if len(allowed) else np.zeros(
            (0, self.dim), np.float32)
        scores = query @ vectors.T  # (Q, M)
        top = min(k, len(allowed))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
        out_scores = np.full((len(query), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(query), k), -1, dtype=np.int64)
        out_scores[:, :top] = np.take_along_axis(scores, order, axis=1)
        out_ids[:, :top] = allowed[order]
        return out_scores, out_ids

    def save(self, folder: str | Path) -> Path:
        """Write index, metadata and a checksummed manifest; replace ``folder`` atomically."""
        if self.index is None:
            self.build()
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            faiss.write_index(self.index, str(tmp / INDEX_FILE))
            self.metadata.to_parquet(tmp / METADATA_FILE)
            manifest = {"format_version": FORMAT_VERSION, "dim": self.dim, "kind": self.kind,
                        "built_kind": self.built_kind, "count": len(self),
                        "exact_threshold": self.exact_threshold, "params": self.params,
                        "sha256": {name: _sha256(tmp / name)
                                   for name in (INDEX_FILE, METADATA_FILE)}}
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
            return atomic_replace_dir(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: str | Path) -> EmbeddingIndex:
        """Load an index saved by :meth:`save`, refusing a damaged or partial one."""
        folder = Path(folder)
        manifest_path = folder / MANIFEST_FILE
        if not manifest_path.is_file():
            raise ValueError(f"{folder}: not a complete index (no {MANIFEST_FILE})")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{manifest_path}: damaged manifest: {error}") from error
        for name, expected in manifest["sha256"].items():
            path = folder / name
            if not path.is_file():
                raise ValueError(f"{folder}: index is incomplete, {name} is missing")
            if _sha256(path) != expected:
                raise ValueError(f"{path}: checksum mismatch; the index is damaged")
        index = cls(manifest["dim"], manifest["kind"], manifest["exact_threshold"],
                    **{k: v for k, v in manifest["params"].items()})
        index.index = faiss.read_index(str(folder / INDEX_FILE))
        metadata = pd.read_parquet(folder / METADATA_FILE)
        if index.index.ntotal != manifest["count"] or len(metadata) != manifest["count"]:
            raise ValueError(f"{folder}: count mismatch between manifest, index and metadata")
        index._metadata = metadata
        index._enable_reconstruct()
        return index
