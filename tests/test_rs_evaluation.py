"""Location-dependent (crisis) retrieval: GeoCLOSP's place fusion and its validation weight."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from domains.remote_sensing import cards
from domains.remote_sensing.embed import EmbeddedScenes
from domains.remote_sensing.geo_evaluation import (
    PROXIMITY_WEIGHTS,
    choose_proximity_weight,
    crisis_queries,
    crisis_retrieval,
)

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
