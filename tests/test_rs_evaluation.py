"""Remote-sensing evaluation: crisis place fusion, land-cover retrieval with held-out
phrasings and baselines, and the report's claims."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from domains.remote_sensing import captions, cards
from domains.remote_sensing.embed import EmbeddedScenes
from domains.remote_sensing.evaluation import (
    evaluate_model,
    held_out_queries,
    land_cover_queries,
    text_to_image,
)
from domains.remote_sensing.geo_evaluation import (
    PROXIMITY_WEIGHTS,
    choose_proximity_weight,
    crisis_queries,
    crisis_retrieval,
)
from domains.remote_sensing.report import headline, markdown_report, plot_claims

FLOOD_PLACE = (90.0, 23.0)


class FakeGeoModel:
    """Text: every crisis tag points along axis 0. Location: east of 60°E along axis 1."""

    def __init__(self, with_location: bool = True) -> None:
        self.towers = {"text": None, **({"location": None} if with_location else {})}

    def encode(self, modality: str, x) -> torch.Tensor:
        if modality == "text":
            return F.normalize(torch.tensor([[1.0, 0.0, 0.0]]).repeat(len(x), 1), dim=1)
        east = (x[:, 0] > 60).float()  # (N,)
        return F.normalize(torch.stack([torch.zeros_like(east), east, 1 - east], 1), dim=1)


def _scenes(model: FakeGeoModel) -> EmbeddedScenes:
    """Ten flooded scenes in the delta (image score 0.6) and ten look-alikes elsewhere (0.85)."""
    n = 20
    flooded = torch.arange(n) < 10
    image = torch.where(flooded, 0.6, 0.85)[:, None]  # (N, 1)
    features = F.normalize(torch.cat([image, torch.sqrt(1 - image**2), torch.zeros(n, 1)], 1))
    coords = torch.where(flooded[:, None], torch.tensor([90.0, 23.0]), torch.tensor([10.0, 50.0]))
    labels = torch.zeros(n, len(cards.label_vocabulary()))
    labels[flooded, len(cards.land_cover_classes()) + cards.crisis_tags().index("flooded area")] = 1
    location = model.encode("location", coords) if "location" in model.towers else None
    return EmbeddedScenes("s2", features, location, labels, torch.zeros(n, dtype=torch.long),
                          coords, [str(i) for i in range(n)], [""] * n, np.arange(n))


def test_location_fusion_lifts_the_event_scenes_above_look_alikes() -> None:
    model = FakeGeoModel()
    scenes = [_scenes(model)]
    queries = [("flooded area", FLOOD_PLACE)]
    image_only = crisis_retrieval(model, scenes, queries, proximity_weight=0.0)
    fused = crisis_retrieval(model, scenes, queries, proximity_weight=1.0)
    assert image_only["ndcg@10"] < 0.1  # the look-alikes win on the image alone
    assert fused["ndcg@10"] == 1.0
    assert fused["per_query"]["flooded area"]["relevant"] == 10


def test_a_model_without_location_ignores_the_weight() -> None:
    model = FakeGeoModel(with_location=False)
    scenes = [_scenes(model)]
    queries = [("flooded area", FLOOD_PLACE)]
    assert (crisis_retrieval(model, scenes, queries, 1.0)
            == crisis_retrieval(model, scenes, queries, 0.0))


def test_weight_is_chosen_from_the_grid_by_validation_ndcg() -> None:
    model = FakeGeoModel()
    weight = choose_proximity_weight(model, [_scenes(model)], [("flooded area", FLOOD_PLACE)])
    assert weight in PROXIMITY_WEIGHTS
    # 0.85 + 0 < 0.6 + w * 1 needs w > 0.25: the smallest weight that ranks perfectly.
    assert weight == 0.3


def test_crisis_queries_come_from_the_synthetic_events_only() -> None:
    queries = crisis_queries("synthetic")
    assert {tag for tag, _ in queries} == set(cards.crisis_tags())
    for _, (lon, lat) in queries:
        assert -180 <= lon <= 180 and -90 <= lat <= 90
    assert crisis_queries("bigearthnet") == []


# ---- land-cover retrieval, held-out phrasings, baselines, the report ----------------------

VOCABULARY = cards.label_vocabulary()


class KeywordModel:
    """Text: the multi-hot of the vocabulary labels named in it (normalised); records prompts."""

    towers = {"text": None}

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, modality: str, texts) -> torch.Tensor:
        self.seen += list(texts)
        rows = torch.tensor([[float(name in t) for name in VOCABULARY] for t in texts])
        return F.normalize(rows + 1e-3, dim=1)


def _land_cover_scenes() -> EmbeddedScenes:
    """Scenes whose image embedding is their own (normalised) multi-hot label vector."""
    sets = [["water", "trees"], ["trees"], ["water"], ["water", "crops", "trees"], ["crops"],
            ["built area"]]  # dominant class first; ties in score go to the lower class index
    labels = torch.stack([torch.tensor([float(n in s) for n in VOCABULARY]) for s in sets])
    dominant = torch.tensor([VOCABULARY.index(s[0]) for s in sets])
    n = len(sets)
    return EmbeddedScenes("s2", F.normalize(labels, dim=1), None, labels, dominant,
                          torch.zeros(n, 2), [str(i) for i in range(n)], [""] * n, np.arange(n))


def test_recall_needs_every_query_label_and_ndcg_is_graded() -> None:
    scenes = _land_cover_scenes()
    query = torch.zeros(1, len(VOCABULARY))
    query[0, [VOCABULARY.index("water"), VOCABULARY.index("crops")]] = 1
    # The query ranks a scene with only one of its two labels first: a miss at k = 1.
    features = F.normalize(scenes.features[2:3] + 1e-3, dim=1)  # looks like "water" alone
    figures = text_to_image(features, query, scenes.features, scenes.labels)
    assert figures["recall@1"] == 0.0
    assert figures["recall@10"] == 1.0
    assert 0.0 < figures["ndcg@10"] < 1.0


def test_evaluate_model_adds_held_out_phrasings_and_baselines(monkeypatch) -> None:
    held_out_names = ["H2O", *VOCABULARY[1:9]]
    monkeypatch.setattr(captions, "held_out_zero_shot",
                        lambda: (held_out_names, ["orbital view of {}"], {}))
    monkeypatch.setattr(captions, "held_out_query", lambda names: "seen from orbit: "
                        + " with ".join(reversed(list(names))))
    model, scenes = KeywordModel(), {"s2": _land_cover_scenes()}
    queries = land_cover_queries(*scenes.values())
    held_out = held_out_queries(queries[1])
    assert held_out[0].startswith("seen from orbit: ")
    train = scenes["s2"].labels[:3]
    result = evaluate_model(model, scenes, queries, held_out=held_out, train_labels=train)
    assert "orbital view of H2O" in model.seen  # the held-out prompts were embedded
    zero_shot = result["zero_shot"]["s2"]
    assert zero_shot["accuracy"] == 1.0 and zero_shot["chance_accuracy"] == pytest.approx(1 / 9)
    assert zero_shot["majority_accuracy"] == pytest.approx(3 / 6)  # water
    # "H2O" names no training label: the water scenes lose their class under held-out names.
    assert result["zero_shot_held_out"]["s2"]["accuracy"] < 1.0
    training, again = result["retrieval"]["s2"], result["retrieval_held_out"]["s2"]
    assert training == again  # the fake reads labels, so the same words give the same figures
    rows = result["retrieval_baselines"]["s2"]
    assert set(rows) == {"random", "label_prior"}
    assert set(rows["random"]) == set(training) and training["ndcg@10"] > rows["random"]["ndcg@10"]


def _claim_results(crisis: float, infonce: float | None) -> dict:
    main = {"retrieval": {"mixed": {"ndcg@10": 0.8}, "s2": {"ndcg@10": 0.8}},
            "retrieval_held_out": {"mixed": {"ndcg@10": 0.7}},
            "zero_shot_held_out": {"s2": {"accuracy": 0.9}},
            "crisis": {"ndcg@10": crisis},
            "crisis_distance": {"ndcg@10": 0.9, "distance_weight": 0.1},
            "crisis_bbox": {"ndcg@10": 0.95, "half_size_km": 250.0},
            "crisis_baselines": {"random": {"ndcg@10": 0.01}}}
    geo = {"crisis": {"ndcg@10": 0.4}, "crisis_fused": {"ndcg@10": 0.92, "proximity_weight": 0.3},
           "text_only": {"crisis": {"ndcg@10": 0.55}, "fusion_weight": 0.2}}
    results = {"main": main, "geo": geo}
    if infonce is not None:
        results["infonce"] = {"crisis": {"ndcg@10": infonce}}
    return results


def test_headline_claims_against_their_baselines(tmp_path) -> None:
    summary = headline(_claim_results(0.5, None), main_is_geo=False)
    figures, claims = summary["figures"], summary["claims"]
    assert figures["held_out_mixed_ndcg@10_ratio"] == pytest.approx(0.7 / 0.8)
    assert figures["held_out_s2_zero_shot_accuracy"] == 0.9 and "mixed_ndcg@1000" not in figures
    assert set(claims) == {"geo_text_only_beats_closp", "geo_place_beats_distance_rerank",
                           "geo_place_beats_bbox_filter"}
    text_only = claims["geo_text_only_beats_closp"]
    assert text_only["relative_gain"] == pytest.approx(0.55 / 0.5 - 1) and text_only["holds"]
    assert claims["geo_place_beats_distance_rerank"]["holds"] is True
    bbox = claims["geo_place_beats_bbox_filter"]
    assert bbox["relative_gain"] == pytest.approx(0.92 / 0.95 - 1) and bbox["holds"] is False
    report = markdown_report(_claim_results(0.5, None), summary,
                             {"model": "closp-tiny", "data": {"layout": "synthetic"}, "seed": 0,
                              "loss": {"type": "soft_target"}, "trainer": {"max_epochs": 1}},
                             {})
    assert "| geo_place_beats_bbox_filter |" in report and "does not hold" in report
    assert "--seeds 0 1 2" in report
    assert plot_claims(claims, tmp_path / "claims.png").stat().st_size > 1000
    with_infonce = headline(_claim_results(0.5, 0.6), main_is_geo=False)["claims"]
    soft = with_infonce["soft_beats_infonce_crisis"]
    assert soft["holds"] is False and soft["relative_gain"] == pytest.approx(0.5 / 0.6 - 1)
    # GeoCLOSP as the main model: its CLOSP companion is the "geo" variant.
    closp, geo = _claim_results(0.5, None)["main"], _claim_results(0.5, None)["geo"]
    swapped = {"main": geo, "geo": closp}
    assert headline(swapped, main_is_geo=True)["claims"]["geo_text_only_beats_closp"]["holds"]
