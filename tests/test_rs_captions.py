"""Caption styles of training and the held-out phrasings that evaluation alone uses."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data import multi_hot
from domains.remote_sensing import cards
from domains.remote_sensing.captions import (
    STYLES,
    CaptionGenerator,
    default_zero_shot,
    held_out_card,
    held_out_query,
    held_out_zero_shot,
    season,
    training_card,
    training_names,
    training_query,
)
from domains.remote_sensing.datamodule import CLOSPDataModule, caption_transform
from domains.remote_sensing.transforms import SceneCaptions

CLASSES = cards.land_cover_classes()
VOCABULARY = cards.label_vocabulary()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _contains(words: list[str], phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``words`` as a word sequence."""
    target = _words(phrase)
    return any(words[i:i + len(target)] == target for i in range(len(words) - len(target) + 1))


def _fold(text: str) -> str:
    return " ".join(_words(text))


def _template_phrases(template: str) -> list[str]:
    """The fixed text of a template, per side of its placeholder."""
    return [part for part in re.split(r"\{[a-z]*\}", template) if _words(part)]


def _named_labels(caption: str) -> set[str]:
    """The labels a caption names: training names matched longest first, each span once."""
    text = " " + " ".join(_words(caption)) + " "
    found = set()
    pairs = sorted(((_fold(n), label) for label, names in training_names().items()
                    for n in names), key=lambda p: -len(p[0]))
    for name, label in pairs:
        if f" {name} " in text:
            found.add(label)
            text = text.replace(f" {name} ", " | ")
    return found


def _many_captions(n: int = 3000) -> list[str]:
    """Captions of every style from random label sets, fractions and places of the card."""
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    writer = CaptionGenerator()
    regions = cards.card("synthetic")["regions"]
    captions = []
    for i in range(n):
        k = int(rng.integers(1, 5))
        cover = list(rng.choice(CLASSES, size=k, replace=False))
        fractions = np.zeros(len(CLASSES))
        fractions[[CLASSES.index(c) for c in cover]] = np.sort(rng.dirichlet(np.ones(k)))[::-1]
        tags = list(rng.choice(cards.crisis_tags(), size=int(rng.integers(0, 3)), replace=False))
        region = regions[i % len(regions)]
        meta = {"region": region["name"], "biome": region["biome"],
                "date": f"2023-{1 + i % 12:02d}-15", "lat": float(region["box"][1])}
        known = None if i % 5 == 0 else fractions
        captions.append(writer.caption(cover + tags, known, meta, generator,
                                       STYLES[i % len(STYLES)])[0])
    return captions


@pytest.fixture(scope="module")
def captions() -> list[str]:
    return _many_captions()


def test_held_out_card_shares_nothing_with_the_training_card() -> None:
    held, train = held_out_card(), training_card()
    held_names = {_fold(n) for names in held["class_names"].values() for n in names}
    train_names = {_fold(n) for names in train["class_names"].values() for n in names}
    train_names |= {_fold(label) for label in VOCABULARY}
    train_names |= {_fold(n) for names in cards.class_synonyms().values() for n in names}
    assert len(held_names) == sum(len(v) for v in held["class_names"].values())  # distinct
    assert not held_names & train_names
    held_templates = {_fold(t) for t in held["templates"]}
    train_templates = {_fold(t) for key in ("zero_shot_templates", "query_templates",
                                            "zero_shot_template_candidates",
                                            "sentence_templates", "place_templates")
                       for t in train[key]}
    assert not held_templates & train_templates
    classes, templates, synonyms = held_out_zero_shot()
    assert len(classes) == len(CLASSES) and len(set(classes)) == len(classes)
    assert not {_fold(c) for c in classes} & train_names
    assert not {_fold(s) for names in synonyms.values() for s in names} & train_names
    assert set(templates) == set(held["templates"])


def test_generated_captions_never_use_held_out_text(captions: list[str]) -> None:
    held = held_out_card()
    forbidden = [n for names in held["class_names"].values() for n in names]
    forbidden += [p for t in held["templates"] for p in _template_phrases(t)]
    assert len(set(captions)) > 1000  # varied
    for caption in captions:
        words = _words(caption)
        leaked = [phrase for phrase in forbidden if _contains(words, phrase)]
        assert not leaked, f"{caption!r} contains held-out {leaked}"
    # The check can fail: a held-out phrasing is caught.
    assert _contains(_words(held_out_query(["trees", "crops"])), held["class_names"]["trees"][0])


def test_every_style_and_crisis_wording_occurs(captions: list[str]) -> None:
    joined = "\n".join(captions)
    for phrase in ("mostly", "some", "a little", "with", "flooded fields", "collapsed buildings",
                   "fire scars", "summer", "winter", "landscape"):
        assert phrase in joined, phrase
    regions = {r["name"] for r in cards.card("synthetic")["regions"]}
    assert any(region in joined for region in regions)
    assert sum(". " in c and c == c.lower() and not c.endswith(".") for c in captions) > 200


def test_captions_name_exactly_their_labels(captions: list[str]) -> None:
    writer, generator = CaptionGenerator(), torch.Generator().manual_seed(3)
    fractions = np.array([0.1, 0.55, 0.0, 0.0, 0.35, 0.0, 0.0, 0.0, 0.0])
    for style in STYLES:
        for _ in range(50):
            caption, _ = writer.caption(["trees", "crops", "water", "flooded area"], fractions,
                                        {"region": "Ganges delta", "biome": "delta",
                                         "date": "2024-08-01", "lat": 23.0}, generator, style)
            assert _named_labels(caption) == {"trees", "crops", "water", "flooded area"}, caption


def test_area_words_follow_fractions() -> None:
    writer, generator = CaptionGenerator(), torch.Generator().manual_seed(0)
    fractions = np.array([0.02, 0.9, 0.0, 0.0, 0.08, 0.0, 0.0, 0.0, 0.0])
    for _ in range(30):
        caption, style = writer.caption(["trees", "crops"], fractions, None, generator,
                                        "area_sentence")
        assert style == "area_sentence"
        assert re.search(r"\b(mostly|largely|predominantly) (trees|forest|tree cover)\b",
                         caption), caption
        assert re.search(r"\b(a little|patches of|bits of) (crops|farmland|agricultural "
                         r"fields)\b", caption), caption


def test_styles_fall_back_without_metadata() -> None:
    writer, generator = CaptionGenerator(), torch.Generator().manual_seed(0)
    caption, style = writer.caption(["water"], None, {}, generator, "place_sentence")
    assert style == "area_sentence" and not any(
        w in _words(caption) for w in ("mostly", "some", "little", "patches"))
    # Only lon/lat/date (a real archive): the season still makes a place sentence.
    caption, style = writer.caption(["water"], None, {"date": "2021-01-10", "lat": 52.0},
                                    generator, "place_sentence")
    assert style == "place_sentence" and "winter" in caption
    assert writer.caption(["trees", "crops"], None, {}, generator, "label_list") == (
        "trees. crops", "label_list")
    with pytest.raises(ValueError, match="unknown caption style 'poem'"):
        writer.caption(["trees"], None, {}, generator, "poem")
    with pytest.raises(ValueError, match="unknown caption styles"):
        CaptionGenerator({"poem": 1.0})


def test_season_from_month_and_hemisphere() -> None:
    assert season("2023-07-15", 48.0) == "summer"
    assert season("2023-07-15", -35.0) == "winter"
    assert season("2023-01-15", -35.0) == "summer"
    assert season("2023-04-15", -35.0) == "autumn"
    assert season("2023-07-15", 5.0) is None  # tropics
    assert season("", 48.0) is None and season("2023-07-15", float("nan")) is None


def test_style_frequencies_follow_the_weights() -> None:
    writer, generator = CaptionGenerator({"label_list": 1.0, "area_sentence": 3.0}), \
        torch.Generator().manual_seed(0)
    counts = Counter(writer.draw_style(generator) for _ in range(4000))
    assert set(counts) == {"label_list", "area_sentence"}
    assert abs(counts["area_sentence"] / 4000 - 0.75) < 0.03


def test_queries_and_zero_shot_prompts() -> None:
    assert training_query(["trees", "crops", "flooded area"]) == "trees. crops. flooded area"
    assert training_query(["trees"]) == cards.caption_for(["trees"])
    query = held_out_query(["trees", "crops", "flooded area"])
    assert query == held_out_query(["trees", "crops", "flooded area"])  # deterministic
    assert "woodland, cropland and inundated fields" in query
    with pytest.raises(ValueError, match="unknown labels"):
        held_out_query(["jungle"])
    classes, templates, synonyms = default_zero_shot()
    assert classes == CLASSES and templates == training_card()["zero_shot_templates"]
    assert synonyms == ({} if not training_card()["zero_shot_synonyms"] else synonyms)


# -- the training transform ---------------------------------------------------------------


def _sample() -> dict:
    return {"label_names": "trees; crops; water; flooded area",
            "label": multi_hot(["trees", "crops", "water", "flooded area"], VOCABULARY),
            "caption": "trees. crops. water. flooded area",
            "fractions": torch.tensor([0.1, 0.55, 0.0, 0.0, 0.35, 0.0, 0.0, 0.0, 0.0]),
            "coords": torch.tensor([90.0, 23.0]), "date": "2024-08-01",
            "region": "Ganges delta", "biome": "delta"}


def test_scene_captions_keep_labels_consistent_and_reseed() -> None:
    transform = SceneCaptions(p=0.5, variants=None, seed=0)
    seen, sizes = [], []
    for index in range(300):
        transform.reseed(0, 0, index)
        out = transform(_sample())
        names = set(out["label_names"].split("; "))
        assert _named_labels(out["caption"]) == names, out["caption"]
        assert out["label"].tolist() == [float(v in names) for v in VOCABULARY]
        assert "trees" in names and "flooded area" in names  # largest class, crisis tag
        seen.append(out["caption"])
        sizes.append(len(names))
    assert len(set(seen)) > 50
    assert 0.1 < sizes.count(3) / len(sizes) < 0.6  # water (10 %) dropped now and then
    again = SceneCaptions(p=0.5, variants=None, seed=0)
    again.reseed(0, 0, 7)
    transform.reseed(0, 0, 7)
    assert again(_sample())["caption"] == transform(_sample())["caption"]
    transform.reseed(0, 1, 7)
    other = [transform(_sample())["caption"] for _ in range(5)]
    again.reseed(0, 0, 7)
    assert other != [again(_sample())["caption"] for _ in range(5)]


def test_sentence_variants_per_scene() -> None:
    transform = SceneCaptions(p=0.5, variants=3, seed=0)
    assert SceneCaptions(seed=0).variants == training_card()["sentence_variants_per_scene"]
    sentences, styles = {}, Counter()
    for scene in ("a", "b", "c", "d"):
        found = set()
        for index in range(80):
            transform.reseed(0, index, 1)
            out = transform({**_sample(), "id": scene})
            assert _named_labels(out["caption"]) == set(out["label_names"].split("; "))
            is_list = ". " in out["caption"] and out["caption"] == out["caption"].lower()
            styles[is_list] += 1
            if not is_list:
                found.add((out["caption"], out["label_names"]))
        assert 1 <= len(found) <= 3
        sentences[scene] = found
    assert len(set().union(*sentences.values())) > 3  # scenes differ
    assert 0.3 < styles[True] / sum(styles.values()) < 0.5  # label lists: weight 0.4 per step
    # Another run seed picks among the same sentences of a scene.
    other = SceneCaptions(p=0.5, variants=3, seed=5)
    for index in range(30):
        other.reseed(0, index, 1)
        out = other({**_sample(), "id": "a"})
        if ". " not in out["caption"]:
            assert (out["caption"], out["label_names"]) in sentences["a"]
    with pytest.raises(ValueError, match="variants per scene must be >= 1"):
        SceneCaptions(variants=0)


def test_caption_augment_option() -> None:
    assert caption_transform(0, seed=0) is None
    assert caption_transform({"p": 0, "styles": {"label_list": 1}}, seed=0) is None
    plain = caption_transform(0.5, seed=0)
    assert isinstance(plain, SceneCaptions) and plain.p == 0.5
    assert plain.writer.weights == {k: float(v) for k, v in training_card()["styles"].items()}
    custom = caption_transform({"p": 0.2, "styles": {"area_sentence": 1}}, seed=0)
    assert custom.p == 0.2 and custom.writer.weights == {"area_sentence": 1.0}
    with pytest.raises(ValueError, match="unknown keys"):
        caption_transform({"q": 1}, seed=0)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from domains.remote_sensing.synthetic import generate_archive

    return generate_archive(tmp_path_factory.mktemp("captions") / "archive", n_s2=16, n_s1=16,
                            n_paired=4, seed=0, size=16, workers=1, progress=False)


def test_training_batches_carry_styles_and_place(archive: Path) -> None:
    module = CLOSPDataModule(archive, sensors=("s2",), batch_size=4, seed=0,
                             augment=False)
    dataset = module.dataset("s2", "train")
    sample = dataset[0]
    assert sample["region"] and sample["biome"] and re.match(r"\d{4}-\d{2}-\d{2}",
                                                             sample["date"])
    captions = []
    for epoch in range(3):
        loader = module.train_dataloader().iterables["s2"]
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            for caption, names in zip(batch["caption"], batch["label_names"], strict=True):
                assert _named_labels(caption) == set(names.split("; ")), caption
                captions.append(caption)
    assert any(". " in c and c == c.lower() for c in captions)  # label lists
    assert any(" " in c and ". " not in c for c in captions)  # sentences
