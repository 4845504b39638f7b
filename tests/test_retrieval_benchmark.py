"""The retrieval benchmark's data and bookkeeping (its figures are in docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("retrieval_bench",
                                                  ROOT / "benchmarks" / "retrieval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_synthetic_archive_is_clustered_and_seeded(bench: ModuleType) -> None:
    world = bench.make_world(64, clusters=256, themes=16)
    vectors = bench.scene_embeddings(world, 4000)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors, bench.scene_embeddings(world, 4000))
    # Clustered: a scene's nearest neighbour is far closer than a typical pair.
    sims = vectors[:500] @ vectors.T  # (500, N)
    sims[np.arange(500), np.arange(500)] = -1
    assert np.median(sims.max(axis=1)) > np.median(sims) + 0.3
    # Text-like queries sit apart from every scene (the modality gap), yet rank them.
    queries = bench.text_like_queries(world, 50)
    best = (queries @ vectors.T).max(axis=1)  # (50,)
    assert best.max() < 0.95 and best.min() > 0.0


def test_recall_and_query_strings(bench: ModuleType) -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, -1, -1]])
    found = np.array([[4, 3, 9, 8], [6, 7, 5, -1]])
    assert bench.recall(found, truth) == pytest.approx((0.5 + 1.0) / 2)
    texts = bench.query_strings(300)
    assert len(texts) == len(set(texts)) == 300 and texts == bench.query_strings(300)


def test_small_run_writes_figures_and_verdict(bench: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "retrieval.json"
    assert bench.main(["--sizes", "2000", "--queries", "20", "--no-text", "--threads", "1",
                       "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    (result,) = payload["results"]
    assert result["size"] == 2000 and result["kind"] == "exact"
    assert result["recall_at_10"] == 1.0 and result["filtered"]["recall_at_10"] == 1.0
    assert 0 < result["index"]["p50_ms"] <= result["index"]["p99_ms"]
    assert result["index_file_bytes"] >= 2000 * payload["machine"]["dim"] * 4
    assert payload["verdict"] == {"size": 1_000_000, "run": False}
