"""`train --seeds`: the verdict rule, aggregation over seed folders, and a tiny run end to end."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import seeds
from domains.remote_sensing import train


def _metrics(gains: dict[str, float | None], figures: dict[str, float]) -> dict[str, Any]:
    claims = {name: {"relative_gain": g, "holds": g is not None and g > 0}
              for name, g in gains.items()}
    return {"summary": {"figures": figures, "claims": claims}}


def test_verdict_rule_on_constructed_metrics() -> None:
    per_seed = {
        0: _metrics({"two_of_three": 0.10, "noisy": 0.01, "steady": 0.10, "gap": 0.2},
                    {"acc": 0.80}),
        1: _metrics({"two_of_three": 0.20, "noisy": 0.02, "steady": 0.12, "gap": None},
                    {"acc": 0.90}),
        2: _metrics({"two_of_three": -0.05, "noisy": 0.60, "steady": 0.11, "gap": 0.1},
                    {"acc": 0.85}),
    }
    summary = seeds.aggregate(per_seed)
    claims = summary["claims"]
    # Positive in 2 of 3 seeds: does not hold, although its mean (+8.3 %) is positive.
    assert claims["two_of_three"]["mean"] == pytest.approx(0.25 / 3)
    assert claims["two_of_three"]["holds"] is False
    # Positive in every seed but mean 0.21 < sd 0.34: does not hold.
    noisy = claims["noisy"]
    assert noisy["mean"] == pytest.approx(0.21)
    assert noisy["sd"] == pytest.approx(statistics.stdev([0.01, 0.02, 0.60]))
    assert noisy["mean"] < noisy["sd"] and noisy["holds"] is False
    # Positive in every seed and mean 0.11 > sd 0.01: holds.
    assert claims["steady"]["holds"] is True
    assert claims["steady"]["sd"] == pytest.approx(0.01)
    assert claims["steady"]["holds_per_seed"] == [True, True, True]
    # A seed without the gain: no verdict.
    assert claims["gap"]["holds"] is None and claims["gap"]["n"] == 2
    assert summary["figures"]["acc"]["mean"] == pytest.approx(0.85)
    assert summary["figures"]["acc"]["sd"] == pytest.approx(0.05)
    assert summary["figures"]["acc"]["values"] == [0.80, 0.90, 0.85]
    # One seed gives no verdict; the first relative change stands in for relative_gain.
    assert seeds.claim_verdict([0.5]) is None
    assert seeds.aggregate({0: {"summary": {"claims": {"c": {"crisis_relative_gain": 0.3}}}},
                            1: {"summary": {"claims": {"c": {"crisis_relative_gain": 0.4}}}}}
                           )["claims"]["c"]["holds"] is True


def test_run_seeds_writes_files_and_keeps_finished_seeds(tmp_path: Path) -> None:
    trained: list[int] = []

    def fake_train(config: dict[str, Any]) -> Path:  # what a domain's run leaves behind
        out = Path(config["out"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.yaml").write_text(yaml.safe_dump(config))
        seed = config["seed"]
        trained.append(seed)
        gain = {0: 0.1, 1: 0.3, 2: -0.1}[seed]
        (out / "metrics.json").write_text(json.dumps(
            _metrics({"claim": gain}, {"acc": 0.5 + seed / 10})))
        return out

    config = {"model": "m", "seed": 0, "out": str(tmp_path / "seeds"), "trainer": {"e": 1}}
    summary = seeds.run_seeds(config, [0, 1], fake_train)
    assert trained == [0, 1]
    assert summary["claims"]["claim"]["holds"] is True  # +10 %, +30 %: mean 0.2 > sd 0.14
    for name in seeds.SEEDS_FILES:
        assert (tmp_path / "seeds" / name).is_file(), name
    saved = yaml.safe_load((tmp_path / "seeds" / "seed-1" / "run.yaml").read_text())
    assert saved["seed"] == 1 and saved["out"].endswith("seed-1")
    report = (tmp_path / "seeds" / "seeds.md").read_text()
    assert "+10.0%" in report and "+30.0%" in report and "holds" in report
    # Run again with a third seed: the finished seeds are kept, only seed 2 trains.
    summary = seeds.run_seeds(config, [0, 1, 2], fake_train)
    assert trained == [0, 1, 2]
    assert summary["claims"]["claim"]["holds"] is False  # negative in seed 2
    # A changed config retrains (the domain's run folder check decides what happens).
    seeds.run_seeds({**config, "trainer": {"e": 2}}, [0], fake_train)
    assert trained == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="distinct seeds"):
        seeds.run_seeds(config, [1, 1], fake_train)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a seeds folder"):
        seeds.run_seeds({**config, "out": str(stranger)}, [0], fake_train)


def test_train_seeds_flag_runs_each_seed_as_a_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real --seeds run of the tiny archive trains 2 x 2 models and evaluates each (over a
    # minute on 2 cores), so the training run itself is replaced by what it leaves behind:
    # this checks the command line, the seed folders and the aggregation of train.main.
    calls: list[dict[str, Any]] = []

    def fake_train_run(config: dict[str, Any], **kwargs: Any) -> Path:
        calls.append({"config": config, **kwargs})
        out = Path(config["out"])
        out.mkdir(parents=True)
        (out / "run.yaml").write_text(yaml.safe_dump(config))
        gain = 0.1 + 0.05 * config["seed"]
        (out / "metrics.json").write_text(json.dumps(
            _metrics({"unified_lifts_s1": gain}, {"s2_zero_shot_accuracy": 0.9})))
        return out

    monkeypatch.setattr(train, "train_run", fake_train_run)
    out = train.main(["--seeds", "0", "1", "--max-epochs", "1", "--no-companions",
                      "--out", str(tmp_path / "seeds")])
    assert out == tmp_path / "seeds"
    assert [c["config"]["seed"] for c in calls] == [0, 1]
    assert [c["config"]["out"] for c in calls] == [str(out / "seed-0"), str(out / "seed-1")]
    assert all(c["config"]["trainer"]["max_epochs"] == 1 and c["config"]["companions"] == []
               for c in calls)
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["claims"]["unified_lifts_s1"]["values"] == pytest.approx([0.1, 0.15])
    assert summary["claims"]["unified_lifts_s1"]["holds"] is True
    # Without --out the seeds go beside the single run's folder, never into it; a run with
    # companions gets the InfoNCE one too (soft targets vs InfoNCE over seeds).
    monkeypatch.chdir(tmp_path)
    assert train.main(["--seeds", "3"]) == Path("runs/closp-tiny-seeds")
    assert calls[-1]["config"]["out"] == str(Path("runs/closp-tiny-seeds/seed-3"))
    assert calls[-1]["config"]["companions"][-1] == "infonce"
    with pytest.raises(SystemExit, match="--resume takes one run folder"):
        train.main(["--seeds", "0", "--resume", str(out / "seed-0")])
