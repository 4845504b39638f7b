"""Zero-shot classifier construction and positive/negative prompt scores."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core import build_zero_shot_classifier, create_model, positive_negative_scores
from core.zero_shot import zero_shot_logits


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return create_model("test-tiny").eval()


def test_classifier_is_mean_over_templates_and_synonyms(model: torch.nn.Module) -> None:
    classes = ["water", "forest"]
    templates = ["a satellite image of {}.", "{} seen from above"]
    clf = build_zero_shot_classifier(model, classes, templates,
                                     synonyms={"forest": ["woodland"]})
    assert clf.shape == (384, 2)
    torch.testing.assert_close(clf.norm(dim=0), torch.ones(2))
    prompts = [t.format(n) for n in ("forest", "woodland") for t in templates]
    expected = F.normalize(model.encode("text", prompts).mean(0), dim=0)
    torch.testing.assert_close(clf[:, 1], expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="placeholder"):
        build_zero_shot_classifier(model, classes, ["no placeholder"])


def test_text_features_classify_their_own_class(model: torch.nn.Module) -> None:
    classes = ["open water", "dense forest", "snow and ice", "urban buildings"]
    clf = build_zero_shot_classifier(model, classes, ["a photo of {}."])
    queries = model.encode("text", ["a lake of open water", "a dense green forest",
                                    "glacier covered in snow and ice", "city with buildings"])
    logits = zero_shot_logits(queries, clf)
    assert logits.argmax(1).tolist() == [0, 1, 2, 3]


def test_positive_negative_scores_are_probabilities(model: torch.nn.Module) -> None:
    features = model.encode("text", ["pleural effusion is present", "lungs are clear"])
    scores = positive_negative_scores(model, features, ["pleural effusion", "pneumothorax"],
                                      positive_template="{}", negative_template="no {}")
    assert scores.shape == (2, 2)
    assert ((scores > 0) & (scores < 1)).all()
    assert scores[0, 0] > scores[1, 0]
