"""The pathology knowledge card: nine classes, codes, lookups, complete knowledge, checks."""

from __future__ import annotations

import copy

import pytest

from domains.pathology import cards

NAMES = ["adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
         "normal colon mucosa", "cancer-associated stroma",
         "colorectal adenocarcinoma epithelium"]
CODES = ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]


def test_classes_and_codes_in_nct_order() -> None:
    assert cards.tissue_classes() == NAMES
    assert cards.class_codes() == CODES
    assert [cards.class_code(n) for n in NAMES] == CODES
    assert cards.tumour_classes() == ["colorectal adenocarcinoma epithelium"]


@pytest.mark.parametrize(("text", "expected"), [
    ("TUM", NAMES[8]), ("tum", NAMES[8]), ("colorectal cancer", NAMES[8]),
    ("  Norm ", "normal colon mucosa"), ("ADIPOSE", "adipose"), ("fat", "adipose"),
    ("mucin", "mucus"), ("Necrosis", "debris"), ("desmoplastic stroma", NAMES[7]),
    ("muscularis propria", "smooth muscle"), ("glass background", "background"),
    ("lymphoid tissue", "lymphocytes"), ("liver", None), ("", None), ("T U M", None)])
def test_code_to_class_accepts_codes_names_and_synonyms(text: str, expected: str | None) -> None:
    assert cards.code_to_class(text) == expected


def test_every_class_has_knowledge() -> None:
    every_synonym: list[str] = []
    for name in NAMES:
        assert len(cards.synonyms(name)) >= 3, name
        assert len(cards.descriptions(name)) >= 3, name
        assert len(cards.caption_words(name)) >= 3, name
        assert len(cards.definition(name)) > 20, name
        assert cards.hypernyms(name)[0] in ("tumour", "non-tumour"), name
        assert name not in cards.synonyms(name)
        every_synonym += [s.lower() for s in cards.synonyms(name)]
    assert len(every_synonym) == len(set(every_synonym))  # no synonym names two classes
    families = {n: set(cards.hypernyms(n)) for n in NAMES}
    assert "epithelium" in families["normal colon mucosa"] & families[
        "colorectal adenocarcinoma epithelium"]
    assert "stroma" in families["smooth muscle"] & families["cancer-associated stroma"]
    assert set(cards.knowledge()) == set(NAMES)
    # Lookups by code give the same knowledge as by name.
    assert cards.descriptions("MUS") == cards.descriptions("smooth muscle")


def test_prompt_templates_are_conch_style() -> None:
    templates = cards.prompt_templates()
    assert len(templates) >= 20 and all(t.count("{}") == 1 for t in templates)
    assert "an H&E image of {}." in templates and "{} tissue." in templates
    assert templates[0].format("mucus") == "mucus."


def test_unknown_class_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown tissue class 'liver'.*ADI"):
        cards.synonyms("liver")


def _broken(edit: str) -> dict:
    loaded = copy.deepcopy(cards.card())
    knowledge = loaded["knowledge"]
    if edit == "missing descriptions":
        del knowledge["mucus"]["descriptions"]
    elif edit == "empty synonyms":
        knowledge["debris"]["synonyms"] = []
    elif edit == "shared synonym":
        knowledge["smooth muscle"]["synonyms"].append("Fat")
    elif edit == "bad hypernym":
        knowledge["adipose"]["hypernyms"] = ["stroma"]
    elif edit == "missing class":
        del knowledge["lymphocytes"]
    elif edit == "bad template":
        loaded["prompt_templates"].append("an image of tissue.")
    return loaded


@pytest.mark.parametrize(("edit", "message"), [
    ("missing descriptions", r"class 'mucus': 'descriptions' must be a non-empty list"),
    ("empty synonyms", r"class 'debris': 'synonyms'"),
    ("shared synonym", r"'Fat' names both 'adipose' and 'smooth muscle'"),
    ("bad hypernym", r"class 'adipose': the first hypernym"),
    ("missing class", r"no knowledge for class 'lymphocytes'"),
    ("bad template", r"exactly one '\{\}'")])
def test_a_broken_card_names_file_class_and_key(edit: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        cards.check_card(_broken(edit))
    assert "datasets/pathology/tissue_classes.yaml" in str(caught.value)
    cards.check_card(cards.card())  # the shipped card passes
