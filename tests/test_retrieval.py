"""EmbeddingIndex: exact top-k, IVF recall, filters, atomic save/load, damaged indexes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from core import atomic
from core.atomic import atomic_replace_dir, atomic_write_bytes
from core.retrieval import (
    INDEX_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    EmbeddingIndex,
    IndexLoadError,
    default_nlist,
    default_nprobe,
    default_train_size,
)


def _clustered(n: int, dim: int, clusters: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).normal(size=(clusters, dim))
    points = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


def _recall(ids: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(ids, truth, strict=True)]))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_exact_index_matches_brute_force_and_round_trips(tmp_path: Path) -> None:
    vectors, queries = _clustered(2000, 32, 10), _clustered(20, 32, 10, seed=1)
    index = EmbeddingIndex(32)
    index.add(vectors[:1000], pd.DataFrame({"id": [f"a{i}" for i in range(1000)]}))
    index.add(torch.from_numpy(vectors[1000:1500]), [{"id": f"b{i}"} for i in range(500)])
    index.add(vectors[1500:])  # rows without metadata
    assert len(index) == 2000
    scores, ids = index.search(queries, 10)
    assert index.built_kind == "exact" and scores.shape == ids.shape == (20, 10)
    np.testing.assert_array_equal(ids, _brute_force(vectors, queries, 10))
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, ids, 1),
                               rtol=1e-5)
    half_scores, half_ids = index.search(torch.from_numpy(queries).half(), 10)
    np.testing.assert_array_equal(half_ids[:, 0], ids[:, 0])
    np.testing.assert_allclose(half_scores, scores, atol=2e-3)
    assert index.metadata["id"].iloc[1200] == "b200" and pd.isna(index.metadata["id"].iloc[1800])
    assert len(index.metadata) == 2000
    index.save(tmp_path / "index")
    assert _leftovers(tmp_path) == []
    loaded = EmbeddingIndex.load(tmp_path / "index")
    scores2, ids2 = loaded.search(queries, 10)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_array_equal(scores2, scores)
    pd.testing.assert_frame_equal(loaded.metadata, index.metadata)
    # Adding after a search (or after loading) extends the same index.
    loaded.add(queries[:1], [{"id": "new"}])
    _, top = loaded.search(queries[:1], 1)
    assert top[0, 0] == 2000 and loaded.metadata["id"].iloc[2000] == "new"


def test_l2_metric_and_unnormalised_rows() -> None:
    rng = np.random.default_rng(3)
    vectors, queries = rng.normal(size=(300, 8)), rng.normal(size=(4, 8))
    index = EmbeddingIndex(8, metric="l2", normalize=False)
    index.add(vectors)
    distances = ((queries[:, None, :] - vectors[None]) ** 2).sum(-1)  # (Q, N)
    expected = np.argsort(distances, axis=1, kind="stable")[:, :5]
    _, ids = index.search(queries, 5)
    np.testing.assert_array_equal(ids, expected)
    mask = np.arange(300) % 3 == 0
    scores, ids = index.search(queries, 5, mask=mask)
    allowed = np.flatnonzero(mask)
    np.testing.assert_array_equal(ids, allowed[np.argsort(distances[:, allowed], 1)[:, :5]])
    np.testing.assert_allclose(scores, np.take_along_axis(distances, ids, 1), rtol=1e-4)
    _, ids = index.search(queries, 3, mask=np.arange(300) == 7)
    assert (ids[:, 0] == 7).all() and (ids[:, 1:] == -1).all()
    assert np.isposinf(index.search(queries, 3, mask=np.arange(300) == 7)[0][:, 1:]).all()


@pytest.fixture(scope="module")
def clustered_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors, queries = _clustered(20_000, 64, 50), _clustered(100, 64, 50, seed=1)
    return vectors, queries, _brute_force(vectors, queries, 10)


def test_ivf_above_threshold_recall_at_10(clustered_set: tuple[np.ndarray, ...]) -> None:
    vectors, queries, truth = clustered_set
    index = EmbeddingIndex(64, exact_threshold=10_000)  # auto -> IVF-Flat
    index.add(vectors)
    _, ids = index.search(queries, 10)
    # nlist ~ sqrt(N) = 141; nprobe max(16, nlist // 64).
    assert index.built_kind == "ivf" and index.built["nlist"] == 141
    assert index.built["nprobe"] == index._ivf().nprobe == 16
    assert _recall(ids, truth) >= 0.95


def test_ivf_default_rules_scale_with_the_archive() -> None:
    # nlist ~ sqrt(N), capped so every cell has >= 39 training rows; nprobe 1/64 of the
    # cells, at least 16 and at most all of them; 64 training rows per cell, >= 65 536.
    assert [default_nlist(n) for n in (1, 100, 2000, 20_000, 10**5, 10**6, 10**7)] == \
        [1, 2, 45, 141, 316, 1000, 3162]
    assert [default_nprobe(nlist) for nlist in (1, 10, 16, 1000, 1024, 3162, 8192)] == \
        [1, 10, 16, 16, 16, 49, 128]
    assert default_train_size(10**6, 1000) == 65_536
    assert default_train_size(10**7, 3162) == 64 * 3162
    assert default_train_size(20_000, 141) == 20_000


def test_ivf_overrides_are_honoured_and_saved(clustered_set: tuple[np.ndarray, ...],
                                              tmp_path: Path) -> None:
    vectors, queries, truth = clustered_set
    index = EmbeddingIndex(64, exact_threshold=10_000, nlist=64, nprobe=1, train_size=5000)
    index.add(vectors)
    _, ids = index.search(queries, 10)
    assert index.built == {"kind": "ivf", "nlist": 64, "trained_on": 20_000, "nprobe": 1}
    assert index._ivf().nprobe == 1
    narrow = _recall(ids, truth)
    _, wide_ids = index.search(queries, 10, nprobe=64)  # every cell: exact
    assert _recall(wide_ids, truth) == 1.0 and narrow < 1.0
    assert index._ivf().nprobe == 1  # a per-search override does not stick
    loaded = EmbeddingIndex.load(index.save(tmp_path / "ivf"))
    assert loaded.built == index.built and loaded._ivf().nprobe == 1
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], ids)
    # nprobe above nlist is clamped; an exact index ignores nprobe.
    small = EmbeddingIndex(64, kind="ivf", nlist=8, nprobe=100)
    small.add(vectors[:2000])
    assert small.build().built["nprobe"] == 8
    exact = EmbeddingIndex(64, nprobe=3)
    exact.add(vectors[:2000])
    np.testing.assert_array_equal(exact.search(queries, 10, nprobe=1)[1],
                                  _brute_force(vectors[:2000], queries, 10))


def test_ivfpq_with_refinement_recall_and_round_trip(clustered_set: tuple[np.ndarray, ...],
                                                     tmp_path: Path) -> None:
    vectors, queries, truth = clustered_set
    index = EmbeddingIndex(64, kind="ivfpq", refine=32)
    index.add(vectors)
    scores, ids = index.search(queries, 10)
    assert index.built["pq_m"] == 8
    assert _recall(ids, truth) >= 0.95
    loaded = EmbeddingIndex.load(index.save(tmp_path / "pq"))
    scores2, ids2 = loaded.search(queries, 10)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_array_equal(scores2, scores)


def test_ivfpq_without_refinement_is_approximate_but_useful() -> None:
    vectors, queries = _clustered(4000, 32, 20), _clustered(50, 32, 20, seed=1)
    index = EmbeddingIndex(32, kind="ivfpq")
    index.add(vectors)
    _, ids = index.search(queries, 10)
    assert (ids >= 0).all()
    assert _recall(ids, _brute_force(vectors, queries, 10)) >= 0.1  # chance: 10 / 4000


@pytest.mark.parametrize("kind", ["exact", "ivf"])
@pytest.mark.parametrize("brute_force_rows", [100_000, 10])
def test_mask_filters_before_ranking(kind: str, brute_force_rows: int) -> None:
    vectors, queries = _clustered(5000, 32, 20), _clustered(5, 32, 20, seed=2)
    index = EmbeddingIndex(32, kind=kind, brute_force_rows=brute_force_rows)
    index.add(vectors)
    mask = np.zeros(5000, dtype=bool)
    mask[::50] = True  # 100 allowed rows
    scores, ids = index.search(queries, 10, mask=mask)
    assert mask[ids].all() and (ids >= 0).all()
    allowed = np.flatnonzero(mask)
    if kind == "exact" or brute_force_rows > 100:  # exact paths
        np.testing.assert_array_equal(ids, allowed[_brute_force(vectors[allowed], queries, 10)])
    else:
        assert _recall(ids, allowed[_brute_force(vectors[allowed], queries, 10)]) >= 0.9
    few = np.zeros(5000, dtype=bool)
    few[[3, 7]] = True
    scores, ids = index.search(queries, 5, mask=few)
    assert (np.sort(ids[:, :2], axis=1) == [3, 7]).all() and (ids[:, 2:] == -1).all()
    assert np.isneginf(scores[:, 2:]).all() and np.isfinite(scores[:, :2]).all()
    _, ids = index.search(queries, 5, mask=np.zeros(5000, dtype=bool))
    assert (ids == -1).all()


def test_ivf_mask_far_from_query_still_returns_k() -> None:
    # The allowed rows all lie in one cluster away from the query, so the IVF cells probed
    # hold none of them: the search must widen rather than return fewer than k rows.
    vectors = _clustered(8000, 32, 20)
    index = EmbeddingIndex(32, kind="ivf", nprobe=1, brute_force_rows=10)
    index.add(vectors)
    query_cluster = _brute_force(vectors, vectors[:1], 300)[0]
    mask = np.ones(8000, dtype=bool)
    mask[query_cluster] = False  # nothing near the query is allowed
    mask &= np.arange(8000) % 40 == 0
    _, ids = index.search(vectors[:1], 20, mask=mask)
    allowed = np.flatnonzero(mask)
    np.testing.assert_array_equal(ids, allowed[_brute_force(vectors[allowed], vectors[:1], 20)])


def test_damaged_or_partial_index_is_refused(tmp_path: Path) -> None:
    index = EmbeddingIndex(8)
    index.add(_clustered(100, 8, 3), [{"id": i} for i in range(100)])
    folder = index.save(tmp_path / "index")
    pristine = {p.name: p.read_bytes() for p in folder.iterdir()}

    def restore() -> None:
        for name, data in pristine.items():
            (folder / name).write_bytes(data)

    data = pristine[INDEX_FILE]
    (folder / INDEX_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexLoadError, match=f"{INDEX_FILE} has .* bytes.*truncated"):
        EmbeddingIndex.load(folder)
    (folder / INDEX_FILE).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(IndexLoadError, match=f"checksum mismatch for {INDEX_FILE}"):
        EmbeddingIndex.load(folder)
    restore()
    (folder / METADATA_FILE).unlink()
    with pytest.raises(IndexLoadError, match=f"{METADATA_FILE} is missing"):
        EmbeddingIndex.load(folder)
    restore()
    manifest = json.loads(pristine[MANIFEST_FILE])
    (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "count": 99}))
    with pytest.raises(IndexLoadError, match="count mismatch"):
        EmbeddingIndex.load(folder)
    (folder / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(IndexLoadError, match=f"damaged {MANIFEST_FILE}"):
        EmbeddingIndex.load(folder)
    (folder / MANIFEST_FILE).unlink()
    with pytest.raises(IndexLoadError, match=f"not a complete index .*{MANIFEST_FILE}"):
        EmbeddingIndex.load(folder)
    with pytest.raises(IndexLoadError, match="no index folder"):
        EmbeddingIndex.load(tmp_path / "elsewhere")
    restore()
    assert len(EmbeddingIndex.load(folder)) == 100


def test_save_replaces_atomically_and_a_failed_save_keeps_the_old_index(tmp_path: Path) -> None:
    first = EmbeddingIndex(8)
    first.add(_clustered(50, 8, 2), [{"id": i} for i in range(50)])
    first.save(tmp_path / "index")
    second = EmbeddingIndex(8)
    second.add(_clustered(70, 8, 2, seed=5), [{"id": i} for i in range(70)])
    second.save(tmp_path / "index")
    assert len(EmbeddingIndex.load(tmp_path / "index")) == 70
    assert _leftovers(tmp_path) == []
    broken = EmbeddingIndex(8)
    broken.add(_clustered(3, 8, 1), [{"id": 1}, {"id": "two"}, {"id": 3.0}])  # not Parquet
    with pytest.raises(Exception, match="(?i)conver|type"):
        broken.save(tmp_path / "index")
    assert len(EmbeddingIndex.load(tmp_path / "index")) == 70
    assert _leftovers(tmp_path) == []


def test_geodataframe_metadata_round_trips_as_geoparquet(tmp_path: Path) -> None:
    import geopandas
    from shapely.geometry import box

    frame = geopandas.GeoDataFrame({"scene": ["s0", "s1", "s2"]},
                                   geometry=[box(i, 0, i + 1, 1) for i in range(3)],
                                   crs="EPSG:4326")
    index = EmbeddingIndex(4)
    index.add(np.eye(4, dtype=np.float32)[:3], frame)
    loaded = EmbeddingIndex.load(index.save(tmp_path / "geo"))
    assert isinstance(loaded.metadata, geopandas.GeoDataFrame)
    assert loaded.metadata.crs == frame.crs
    assert loaded.metadata.geometry.iloc[2].equals(box(2, 0, 3, 1))


def test_inputs_are_validated() -> None:
    index = EmbeddingIndex(8)
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        index.add(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="metadata rows"):
        index.add(np.ones((2, 8)), [{"id": 1}])
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.full((2, 8), np.nan))
    index.add(np.ones((4, 8)))
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        index.search(np.zeros((2, 5)), 3)
    with pytest.raises(ValueError, match=r"boolean array of shape \(4,\)"):
        index.search(np.ones(8), 1, mask=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="boolean"):
        index.search(np.ones(8), 1, mask=np.ones(4, dtype=int))
    with pytest.raises(ValueError, match="positive integer"):
        index.search(np.ones(8), 0)
    with pytest.raises(ValueError, match="unknown index kind 'hnsw'"):
        EmbeddingIndex(8, kind="hnsw")
    with pytest.raises(ValueError, match="must divide"):
        EmbeddingIndex(8, kind="ivfpq", pq_m=3)


@pytest.mark.parametrize("exchange", [True, False])
def test_atomic_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool) -> None:
    if not exchange:  # the portable path: move the old folder aside, then rename
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and _leftovers(tmp_path) == []
    for content in ("old", "new"):
        tmp = tmp_path / f".staging-{content}"
        tmp.mkdir()
        (tmp / "data.txt").write_text(content)
        atomic_replace_dir(tmp, tmp_path / "folder")
    assert (tmp_path / "folder" / "data.txt").read_text() == "new"
    assert _leftovers(tmp_path) == []
