"""`python -m domains.pathology.evaluate RUN [--data PATH --layout L]`: evaluate a pathology run.

Also called at the end of training, which writes the run's own ``metrics.json``,
``report.md`` and figures into the run folder. Run on its own — e.g. a model trained on
NCT-CRC-HE-100K evaluated on CRC-VAL-HE-7K — it writes into ``RUN/eval/<data-folder-name>/``
(or ``--out``) and never touches the training report. For every model of the run, on the
held-out split (:mod:`domains.pathology.evaluation`): tile zero-shot tissue classes with
three prompt sets, with and without Macenko stain normalisation, beside chance and the
majority class; slide zero-shot by top-K pooling with its time per 1,000 tiles; caption
<-> tile Recall@k. Figures: training curves, the tile confusion matrix, a slide heat map.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.atomic import atomic_write_bytes
from core.cli import run_cli
from core.data import BadSampleLog, collect_bad_samples
from core.image_text_runs import evaluate_run, evaluation_parser
from core.model import ContrastiveModel
from core.plots import (
    plot_confusion_matrix,
    plot_tile_heatmap,
)
from core.runs import write_training_curves
from core.zero_shot import PromptClassifier
from domains.pathology import cards
from domains.pathology.archives import open_dataset
from domains.pathology.embed import (
    EmbeddedSlide,
    EmbeddedTiles,
    embed_slides,
    embed_split,
)
from domains.pathology.evaluation import (
    PROMPT_KINDS,
    RECALL_KS,
    choose_top_k,
    retrieval_metrics,
    slide_scores,
    slide_zero_shot,
    tile_baselines,
    tile_zero_shot,
    zero_shot_logits,
)
from domains.pathology.report import STAINS, headline, markdown_report, print_summary
from domains.pathology.train import BAD_SAMPLE_LOG, data_root, variants_for
from domains.pathology.transforms import stain_normalisation
from domains.pathology.variants import Variant

DEFAULT_TOP_K = 5  # the prior K (CONCH's MI-Zero sweep scaled to our ~33-tile slides)
#: The K that ``top_k: validation`` chooses among (and the sweep the report shows).
TOP_K_CANDIDATES = (1, 3, 5, 10, 20)


def slide_class(label: str) -> str:
    """The card class a slide label names (code, name or synonym)."""
    cls = cards.code_to_class(label)
    if cls is None:
        raise ValueError(f"slide label {label!r} names no tissue class of the card; known: "
                         f"{', '.join(cards.tissue_classes())}")
    return cls


def train_targets(root: Path, layout: str | None, options: dict[str, Any]) -> np.ndarray:
    """(M,) class indices of the training tiles (for the majority-class baseline)."""
    classes = cards.tissue_classes()
    labels = open_dataset(root, "train", layout=layout, **options).labels()
    return np.array([classes.index(v) if v in classes else -1 for v in labels], dtype=np.int64)


def slide_tile_logits(classifier: PromptClassifier, slides: list[EmbeddedSlide],
                      max_templates: int | None = None) -> list[np.ndarray]:
    """Per slide, its (T, 9) tile logits over the tissue classes (ensemble prompts)."""
    classes = cards.tissue_classes()
    return [zero_shot_logits(classifier, slide.features, classes,
                             max_templates=max_templates).numpy() for slide in slides]


def slide_predictions(tile_logits: list[np.ndarray], slides: list[EmbeddedSlide], k: int
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Top-K slide probabilities over the classes the slides' labels name.

    Returns:
        (n, S) slide probabilities, (n,) true slide class indices, the S slide classes.
    """
    classes = cards.tissue_classes()
    named = {slide_class(s.label) for s in slides}
    slide_classes = [c for c in classes if c in named]
    probabilities = np.stack([slide_scores(logits, classes, slide_classes, k)
                              for logits in tile_logits])  # (n, S)
    target = np.array([slide_classes.index(slide_class(s.label)) for s in slides])
    return probabilities, target, slide_classes


def balanced_accuracy_by_k(tile_logits: list[np.ndarray], slides: list[EmbeddedSlide],
                           candidates: Sequence[int]) -> dict[int, float]:
    """Slide balanced accuracy of top-K pooling for each candidate K."""
    found = {}
    for k in candidates:
        probabilities, target, slide_classes = slide_predictions(tile_logits, slides, k)
        found[int(k)] = slide_zero_shot(probabilities, target, slide_classes)[
            "balanced_accuracy"]
    return found


def evaluate_slides(tile_logits: list[np.ndarray], slides: list[EmbeddedSlide],
                    k: int) -> tuple[dict[str, Any], list[np.ndarray]]:
    """MI-Zero slide zero-shot of embedded slides over the classes their labels name.

    Args:
        tile_logits: Per slide, its (T, 9) tile logits (:func:`slide_tile_logits`).
        slides: The embedded slides.
        k: Tiles pooled per class.

    Returns:
        The slide figures, and per slide its (T, 9) tile probabilities (for heat maps).
    """
    probabilities, target, slide_classes = slide_predictions(tile_logits, slides, k)
    per_slide = [{"slide_id": slide.slide_id, "label": slide_class(slide.label),
                  "predicted": slide_classes[int(scores.argmax())],
                  "tiles": len(slide.features),
                  "probabilities": dict(zip(slide_classes, map(float, scores), strict=True))}
                 for slide, scores in zip(slides, probabilities, strict=True)]
    tiles_total = sum(len(s.features) for s in slides)
    seconds = sum(s.seconds for s in slides)
    result = {**slide_zero_shot(probabilities, target, slide_classes), "k": k,
              "classes": slide_classes, "tiles": tiles_total,
              "tile_size": slides[0].tile_size,
              "seconds_per_1000_tiles": 1000 * seconds / max(tiles_total, 1),
              "per_slide": per_slide}
    tile_probabilities = [torch.from_numpy(x).softmax(1).numpy() for x in tile_logits]
    return result, tile_probabilities


def evaluate_model(model: ContrastiveModel, tiles: dict[str, EmbeddedTiles],
                   slides: list[EmbeddedSlide], reference: np.ndarray | None,
                   settings: dict[str, Any], val_slides: list[EmbeddedSlide] | None = None
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Tile and slide zero-shot and retrieval of one model on one embedded split.

    Args:
        model: The trained model.
        tiles: Stain setting (``none``, ``macenko``) -> the split's tiles embedded with it.
        slides: The split's slides, embedded (may be empty).
        reference: Training class indices (majority baseline; ``None``: the split's own).
        settings: The run config's ``evaluation`` section (``top_k``: a number, or
            ``"validation"`` to choose it among ``top_k_candidates`` on ``val_slides``;
            ``recall_ks``, ``max_templates``).
        val_slides: The validation split's slides, embedded (for choosing K).

    Returns:
        The metrics, and what the figures need (logits, tile probabilities).
    """
    classes = cards.tissue_classes()
    classifier = PromptClassifier(model)
    templates = settings.get("max_templates")
    own = stain_normalisation(model.config.extra) or "none"
    first = tiles[own]
    zero_shot: dict[str, Any] = {"own_stain": own, "tiles": int((first.target >= 0).sum())}
    logits: dict[tuple[str, str], torch.Tensor] = {}
    for stain, embedded in tiles.items():
        zero_shot[stain] = {}
        for kind in PROMPT_KINDS:
            logits[stain, kind] = zero_shot_logits(classifier, embedded.images, classes, kind,
                                                   max_templates=templates)
            zero_shot[stain][kind] = tile_zero_shot(logits[stain, kind], embedded.target,
                                                    classes)
    zero_shot["baselines"] = tile_baselines(first.target, len(classes), reference)
    ks = tuple(settings.get("recall_ks") or RECALL_KS)
    result: dict[str, Any] = {
        "tile_zero_shot": zero_shot,
        "retrieval": {**retrieval_metrics(first.images, first.captions, first.target, ks),
                      "ks": list(ks)}}
    extras: dict[str, Any] = {"logits": logits[own, "ensemble"], "target": first.target}
    if slides:
        candidates = [int(k) for k in settings.get("top_k_candidates") or TOP_K_CANDIDATES]
        k, source, on_val = settings.get("top_k", DEFAULT_TOP_K), "config", {}
        if k == "validation":
            if val_slides and len({slide_class(s.label) for s in val_slides}) > 1:
                on_val = balanced_accuracy_by_k(
                    slide_tile_logits(classifier, val_slides, templates), val_slides,
                    candidates)
            k = choose_top_k(on_val, DEFAULT_TOP_K)
            source = "validation" if on_val else "default (no validation slides)"
        tile_logits = slide_tile_logits(classifier, slides, templates)
        result["slide_zero_shot"], extras["slide_tiles"] = evaluate_slides(
            tile_logits, slides, int(k))
        result["slide_zero_shot"].update({
            "k_source": source, "validation_balanced_accuracy_by_k": on_val,
            "balanced_accuracy_by_k": balanced_accuracy_by_k(tile_logits, slides,
                                                             candidates)})
    return result, extras


def write_figures(out: Path, results: dict[str, Any], extras: dict[str, Any],
                  slides: list[EmbeddedSlide]) -> None:
    """The confusion matrix of the main model and the heat map of one held-out slide."""
    classes = cards.tissue_classes()
    zero_shot = results["main"]["tile_zero_shot"]
    own = zero_shot[zero_shot["own_stain"]]["ensemble"]
    codes = [cards.class_code(c) for c in classes]
    plot_confusion_matrix(np.array(own["confusion"]), codes, out / "confusion_matrix.png",
                          title=f"tile zero-shot, balanced accuracy "
                          f"{own['balanced_accuracy']:.3f}")
    if not slides:
        return
    tumour = cards.tumour_classes()[0]
    chosen = next((i for i, s in enumerate(slides) if slide_class(s.label) == tumour), 0)
    slide = slides[chosen]
    probabilities = extras["slide_tiles"][chosen][:, classes.index(tumour)]  # (T,)
    plot_tile_heatmap(slide.thumbnail, probabilities, slide.positions, slide.tile_size,
                      slide.dimensions, out / "slide_heatmap.png",
                      title=f"{slide.slide_id} (label {cards.class_code(slide_class(slide.label))})"
                      f": tile probability of {cards.class_code(tumour)}",
                      label=f"P({cards.class_code(tumour)})", boxes=slide.boxes)


def evaluate_variants(models: dict[str, ContrastiveModel], variants: list[Variant],
                      config: dict[str, Any], root: Path, out: Path,
                      training_seconds: float | None = None, run: Path | None = None
                      ) -> dict[str, Any]:
    """Evaluate every trained variant; write ``metrics.json``, ``report.md`` and figures.

    Args:
        models: Trained models by variant name.
        variants: The run's variants (main first).
        config: The run configuration.
        root: Data folder.
        out: Where metrics, report and figures go (the run folder at the end of training).
        training_seconds: Wall time of training, for the report.
        run: The run folder when ``out`` is another one (its curves and skipped tiles).

    Returns:
        The metrics dict written to ``metrics.json``.
    """
    torch.manual_seed(config["seed"])
    data = config["data"]
    settings = config.get("evaluation") or {}
    split = settings.get("split", "test")
    options = data.get("options") or {}
    try:
        reference = train_targets(root, data.get("layout"), options)
    except (FileNotFoundError, ValueError):  # an evaluation folder without a train split
        reference = None
    results: dict[str, Any] = {}
    main_extras: dict[str, Any] = {}
    main_slides: list[EmbeddedSlide] = []
    bad: list[tuple[str, str]] = []
    for variant in variants:
        model = models[variant.name]
        tiles = {stain: embed_split(model, root, split, data.get("layout"), data["batch_size"],
                                    options, stain=None if stain == "none" else stain)
                 for stain in STAINS}
        slide_settings = (int(settings.get("slide_tile_size", 224)), data["batch_size"])
        slide_options = settings.get("slide_options") or {}
        slides, bad_slides = embed_slides(model, root, split, *slide_settings, **slide_options)
        val_slides = embed_slides(model, root, "val", *slide_settings, **slide_options)[0] \
            if slides and settings.get("top_k") == "validation" and split != "val" else []
        results[variant.name], extras = evaluate_model(model, tiles, slides, reference,
                                                       settings, val_slides)
        if variant.name == "main":
            main_extras, main_slides = extras, slides
            bad = [*tiles["none"].bad_samples, *bad_slides]
    summary = headline(results)
    timing = {"training_seconds": training_seconds}
    logged = collect_bad_samples([], BadSampleLog((run or out) / "logs" / BAD_SAMPLE_LOG))
    bad = list(dict.fromkeys([*logged, *bad]))
    payload = {"domain": "pathology", "summary": summary, "variants": results,
               "timing": timing, "bad_samples": bad}
    atomic_write_bytes(out / "metrics.json", json.dumps(payload, indent=2).encode())
    atomic_write_bytes(out / "report.md",
                       markdown_report(results, summary, config, timing).encode())
    write_training_curves(out, variants, run)
    write_figures(out, results, main_extras, main_slides)
    print_summary(summary, str(out), bad)
    return payload


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Evaluate a run folder from the command line (into its own folder)."""
    parser = evaluation_parser(
        prog="python -m domains.pathology.evaluate",
        description="Evaluate a pathology run folder: tile and slide zero-shot tissue "
        "classes, caption <-> tile retrieval.",
        set_example="folder_split=test for CRC-VAL-HE-7K")
    parser.add_argument("--top-k", help="slide zero-shot: tiles pooled per class, or "
                        "'validation' (chosen on the validation slides)")
    args = parser.parse_args(argv)

    def configure(config: dict[str, Any]) -> None:
        if args.top_k is not None:
            config["evaluation"]["top_k"] = args.top_k if args.top_k == "validation" \
                else int(args.top_k)

    return evaluate_run(args, data_root=data_root, variants=variants_for,
                        evaluate=evaluate_variants, configure=configure)


if __name__ == "__main__":
    run_cli(main)
