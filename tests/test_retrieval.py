"""EmbeddingIndex: exact top-k, IVF recall, filters, atomic save/load, damaged indexes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.retrieval import INDEX_FILE, MANIFEST_FILE, EmbeddingIndex


def _clustered(n: int, dim: int, clusters: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    points = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def test_exact_index_matches_brute_force_and_round_trips(tmp_path: Path) -> None:
    vectors, queries = _clustered(2000, 32, 10), _clustered(20, 32, 10, seed=1)
    index = EmbeddingIndex(32)
    index.add(vectors[:1000], pd.DataFrame({"id": [f"a{i}" for i in range(1000)]}))
    index.add(vectors[1000:], [{"id": f"b{i}"} for i in range(1000)])
    scores, ids = index.search(queries, 10)
    assert index.built_kind == "exact"
    np.testing.assert_array_equal(ids, _brute_force(vectors, queries, 10))
    assert index.metadata["id"].iloc[1500] == "b500"
    index.save(tmp_path / "index")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    loaded = EmbeddingIndex.load(tmp_path / "index")
    scores2, ids2 = loaded.search(queries, 10)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_allclose(scores2, scores)
    pd.testing.assert_frame_equal(loaded.metadata, index.metadata)


@pytest.mark.parametrize("kind", ["ivf", "ivfpq"])
def test_ivf_recall_at_10(kind: str) -> None:
    vectors, queries = _clustered(20_000, 64, 50), _clustered(100, 64, 50, seed=1)
    index = EmbeddingIndex(64, kind=kind)
    index.add(vectors)
    _, ids = index.search(queries, 10)
    truth = _brute_force(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)])
    assert recall >= 0.95


def test_auto_kind_switches_at_threshold() -> None:
    index = EmbeddingIndex(16, exact_threshold=500)
    index.add(_clustered(600, 16, 5))
    assert index.build().built_kind == "ivfpq"


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_mask_filters_before_ranking(kind: str) -> None:
    vectors, queries = _clustered(5000, 32, 20), _clustered(5, 32, 20, seed=2)
    index = EmbeddingIndex(32, kind=kind)
    index.add(vectors)
    mask = np.zeros(5000, dtype=bool)
    mask[::50] = True  # 100 allowed rows
    scores, ids = index.search(queries, 10, mask=mask)
    assert mask[ids].all()
    allowed = np.flatnonzero(mask)
    expected = allowed[_brute_force(vectors[allowed], queries, 10)]
    np.testing.assert_array_equal(ids, expected)
    few = np.zeros(5000, dtype=bool)
    few[[3, 7]] = True
    _, ids = index.search(queries, 5, mask=few)
    assert set(ids[0, :2]) == {3, 7} and (ids[:, 2:] == -1).all()


def test_damaged_or_partial_index_is_refused(tmp_path: Path) -> None:
    index = EmbeddingIndex(8)
    index.add(_clustered(100, 8, 3))
    folder = index.save(tmp_path / "index")
    data = (folder / INDEX_FILE).read_bytes()
    (folder / INDEX_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="checksum mismatch"):
        EmbeddingIndex.load(folder)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(ValueError, match="not a complete index"):
        EmbeddingIndex.load(folder)
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        index.search(np.zeros((2, 5)), 3)
