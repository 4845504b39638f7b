"""The CrisisLandMark fixture trains end to end, and the published benchmark scores the run.

The training goes through the normal entry point (``domains.remote_sensing.train.main``)
on ``tests/data/crisislandmark`` (written from the dataset card by its ``data.py``); the
benchmark's metric is checked on a hand-built case worked out below.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from domains.remote_sensing import benchmark, train

CLM = Path(__file__).parent / "data" / "crisislandmark"


@pytest.fixture(scope="module")
def clm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CLOSP-tiny trained for 2 epochs (batch 2) on the CrisisLandMark fixture."""
    out = tmp_path_factory.mktemp("clm") / "run"
    return train.main(["--data", str(CLM), "--layout", "crisislandmark", "--out", str(out),
                       "--no-companions", "--batch-size", "2", "--max-epochs", "2",
                       "--set", "trainer.log_every_n_steps=1"])


def test_crisislandmark_fixture_trains_end_to_end(clm_run: Path) -> None:
    metrics = json.loads((clm_run / "metrics.json").read_text())
    assert (clm_run / "model.safetensors").is_file()
    zero_shot = metrics["variants"]["main"]["zero_shot"]
    assert zero_shot["s2"]["n"] == 3 and zero_shot["s1"]["n"] == 3  # the corpus (test) split
    bad = json.dumps(metrics)
    assert "cabuar_california_0042" in bad and "mmflood_EMSR271_02" in bad


def test_benchmark_scores_the_run_on_the_published_queries(clm_run: Path) -> None:
    written = benchmark.main([str(clm_run), "--archive", str(CLM)])
    assert written == clm_run / "eval" / "crisislandmark-benchmark" / "metrics.json"
    metrics = json.loads(written.read_text())
    assert metrics["n_queries"] == 4 and metrics["judged_queries"] == 3  # q3: no corpus match
    assert metrics["all"]["corpus"] == 6 and metrics["s2"]["corpus"] == 3
    assert metrics["all"]["scored_queries"] == 3 and metrics["all"]["unmatched_judgements"] == 0
    for scope in ("all", "s2", "s1"):
        for name in ("ndcg@10", "ndcg@1000", "recall@1", "recall@10", "recall_fraction@10"):
            assert 0.0 <= metrics[scope][name] <= 1.0, (scope, name)
        # Every judged sample is within the top 10 of a 3- or 6-sample corpus.
        assert metrics[scope]["recall_fraction@10"] == 1.0
    assert metrics["run_fingerprint"] and not list(written.parent.glob(".*.tmp"))


def test_benchmark_cli_reports_a_missing_benchmark_in_one_line(
        clm_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        benchmark.run_cli(lambda: benchmark.main([str(clm_run), "--archive", str(tmp_path)]))
    assert stop.value.code == 2
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert printed.startswith("error:") and "queries.jsonl: benchmark queries not found" in printed


@pytest.mark.parametrize("chunk", [4_000_000, 4])  # all queries at once, or one at a time
def test_benchmark_metrics_on_a_hand_built_case(chunk: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(benchmark, "_CHUNK_ELEMENTS", chunk)
    corpus = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])  # c0, c1, c2
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [1.0, 1.0]])
    qrels = {"a": {"c1": 2, "c2": 1, "gone": 3}, "b": {"c0": 1}, "c": {"c1": 1, "c0": 3}}
    ids = ["c0", "c1", "c2"]
    found = benchmark.benchmark_metrics(queries, corpus, ids, ["a", "b", "c", "d"], qrels,
                                        ndcg_k=(1, 10), recall_k=(1, 2))
    # a ranks c0, c1, c2: DCG = 2/log2(3) + 1/log2(4); ideal = 2 + 1/log2(3).
    ndcg_a = (2 / math.log2(3) + 0.5) / (2 + 1 / math.log2(3))
    # b ranks c2, c1, c0: DCG = 1/log2(4); ideal = 1.  c ranks c1, c0, c2: DCG = 1 + 3/log2(3);
    # ideal = 3 + 1/log2(3).  d has no judgement and is left out.
    ndcg_b, ndcg_c = 0.5, (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert found["ndcg@10"] == pytest.approx((ndcg_a + ndcg_b + ndcg_c) / 3)
    # nDCG@1: only c's first sample (c1, gain 1) is relevant; its ideal first gain is 3 (c0).
    assert found["ndcg@1"] == pytest.approx((0 + 0 + 1 / 3) / 3)
    assert found["recall@1"] == pytest.approx(1 / 3)
    assert found["recall@2"] == pytest.approx(2 / 3)  # a finds c1 second; b's c0 is third
    assert found["recall_fraction@2"] == pytest.approx((1 / 2 + 0 + 1) / 3)
    assert found["scored_queries"] == 3 and found["corpus"] == 3
    assert found["unmatched_judgements"] == 1  # "gone" is not in the corpus
    # A cut-off below the corpus size: judged samples ranked past it still count in the ideal
    # DCG and in the recall denominators.
    cut = benchmark.benchmark_metrics(queries, corpus, ids, ["a", "b", "c", "d"], qrels,
                                      ndcg_k=(1,), recall_k=(1,))
    assert cut["ndcg@1"] == pytest.approx((0 + 0 + 1 / 3) / 3)
    assert cut["recall_fraction@1"] == pytest.approx((0 + 0 + 1 / 2) / 3)


def test_qrels_and_queries_read_beir_trec_and_per_query_files(tmp_path: Path) -> None:
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "trees"}\n\n'
                                            '{"query_id": 7, "query": "water"}\n')
    assert benchmark.read_queries(tmp_path / "queries.jsonl") == {"q1": "trees", "7": "water"}
    qrels = tmp_path / "qrels"
    qrels.mkdir()
    (qrels / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tk1\t2\n")
    (qrels / "trec.txt").write_text("7 0 k2 1\n7 0 k3 0\n")
    (qrels / "q9.csv").write_text("corpus-id,score\nk4,3\n")
    (qrels / "more.jsonl").write_text('{"query-id": "q1", "corpus-id": "k5", "score": 1}\n')
    assert benchmark.read_qrels(qrels) == {"q1": {"k1": 2.0, "k5": 1.0},
                                           "7": {"k2": 1.0, "k3": 0.0}, "q9": {"k4": 3.0}}
    (tmp_path / "bad.jsonl").write_text('{"_id": "q1"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: expected a query id"):
        benchmark.read_queries(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError, match="no qrels files"):
        benchmark.read_qrels(tmp_path / "nothing")
