"""The pathology run's headline figures, ``report.md`` and console summary.

Rendered with the report helpers every domain shares (:mod:`core.runs`: ``markdown_table``,
``summary_table``, ``print_bad_samples``, ``fmt``). What is about pathology: the tile
zero-shot table (single template, CONCH ensemble and knowledge-card descriptions side by
side, with and without Macenko stain normalisation, beside chance and the majority
class), per-class F1, the slide zero-shot table (MI-Zero top-K pooling, beside chance and
the majority class, with the slide time per 1,000 tiles) and the retrieval table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.runs import console, fmt, markdown_table, metric, print_bad_samples, summary_table
from domains.pathology.evaluation import PROMPT_KINDS

TARGETS = {"tile_balanced_accuracy": 0.70, "slide_balanced_accuracy": 0.80}
STAINS = ("none", "macenko")


def headline(results: Mapping[str, Any]) -> dict[str, Any]:
    """The headline figures of the main model (``metrics.json["summary"]``).

    ``tile_balanced_accuracy`` is the CONCH-ensemble zero-shot balanced accuracy over the
    tissue classes on the held-out tiles, as the model was trained (its own stain
    setting); ``slide_balanced_accuracy`` the MI-Zero top-K slide balanced accuracy.
    """
    main = results["main"]
    tiles = main["tile_zero_shot"]
    own = tiles["own_stain"]
    summary: dict[str, Any] = {
        "tile_balanced_accuracy": metric(tiles, own, "ensemble", "balanced_accuracy"),
        "tile_accuracy": metric(tiles, own, "ensemble", "accuracy"),
        "tile_macro_f1": metric(tiles, own, "ensemble", "macro_f1"),
        "tile_balanced_accuracy_single": metric(tiles, own, "single", "balanced_accuracy"),
        "tile_balanced_accuracy_descriptions": metric(tiles, own, "descriptions",
                                                      "balanced_accuracy"),
        "tile_balanced_accuracy_macenko": metric(tiles, "macenko", "ensemble",
                                                 "balanced_accuracy"),
        "tile_balanced_accuracy_chance": metric(tiles, "baselines", "chance",
                                                "balanced_accuracy"),
        "tile_accuracy_majority": metric(tiles, "baselines", "majority", "accuracy"),
    }
    slides = main.get("slide_zero_shot") or {}
    summary["slide_balanced_accuracy"] = metric(slides, "balanced_accuracy")
    summary["slide_balanced_accuracy_chance"] = metric(slides, "chance", "balanced_accuracy")
    summary["slide_accuracy_majority"] = metric(slides, "majority", "accuracy")
    summary["slide_seconds_per_1000_tiles"] = metric(slides, "seconds_per_1000_tiles")
    retrieval = main["retrieval"]
    summary["caption_to_tile_recall@1"] = retrieval.get("caption_to_tile_recall@1")
    summary["random_recall@1"] = retrieval.get("random_recall@1")
    return summary


def tile_rows(tiles: Mapping[str, Any]) -> list[list[Any]]:
    """Rows of the tile zero-shot table: prompts x stain, then the baselines."""
    rows = []
    for stain in STAINS:
        for kind in PROMPT_KINDS:
            entry = (tiles.get(stain) or {}).get(kind)
            if entry is not None:
                rows.append([kind, stain, entry["accuracy"], entry["balanced_accuracy"],
                             entry["macro_f1"]])
    chance, majority = tiles["baselines"]["chance"], tiles["baselines"]["majority"]
    rows.append(["chance", "", chance["accuracy"], chance["balanced_accuracy"], None])
    rows.append(["majority class", "", majority["accuracy"], majority["balanced_accuracy"],
                 None])
    return rows


def markdown_report(results: Mapping[str, Any], summary: Mapping[str, Any],
                    config: Mapping[str, Any], timing: Mapping[str, Any]) -> str:
    """The run's ``report.md``: setup, tile and slide zero-shot, retrieval, companions."""
    main = results["main"]
    tiles = main["tile_zero_shot"]
    seconds = timing.get("training_seconds")
    settings = config.get("evaluation") or {}
    lines = [f"# Pathology run: {config['model']}", "",
             f"Data: `{config['data'].get('root') or 'synthetic set (default)'}` "
             f"(layout {config['data'].get('layout') or 'detected'}); evaluated on the "
             f"{settings.get('split', 'test')} split (held-out sites): "
             f"{tiles['tiles']} tiles. Training wall time: "
             f"{fmt(round(seconds, 1)) if seconds is not None else '—'} s. "
             f"Loss: {config['loss'].get('type')}. The model's own stain normalisation: "
             f"{tiles['own_stain']}."
             + (f" Prompt ensembles use the card's first {settings['max_templates']} "
                f"templates only." if settings.get("max_templates") else ""), "",
             "## Tile zero-shot (CONCH prompts)", "",
             "Each class is the mean embedding of its prompts: *single* — the class name in "
             "one template; *ensemble* — class names x synonyms x templates from the "
             "knowledge card; *descriptions* — the card's morphology descriptions. *macenko*: "
             "test tiles Macenko-normalised to the card's reference stain before the model. "
             "Baselines: a uniform random guess (chance) and always the most common "
             "training class (majority).", ""]
    lines += markdown_table(["prompts", "stain", "accuracy", "balanced accuracy", "macro F1"],
                            tile_rows(tiles))
    own = tiles[tiles["own_stain"]]
    lines += ["", f"Per-class F1 (stain: {tiles['own_stain']}):", ""]
    lines += markdown_table(["class", *PROMPT_KINDS],
                            [[c, *(own[k]["per_class_f1"][c] for k in PROMPT_KINDS)]
                             for c in own["ensemble"]["per_class_f1"]])
    slides = main.get("slide_zero_shot")
    lines += ["", "## Slide zero-shot (MI-Zero top-K pooling)", ""]
    if slides:
        lines += [f"Every tissue tile of a slide ({slides['tile_size']} px) is scored over "
                  f"each class's ensemble prompts; a class's slide logit is the mean of "
                  f"its K = {slides['k']} highest tile logits, and the softmax over the "
                  f"slide classes ({', '.join(slides['classes'])}) gives the slide "
                  f"probabilities. "
                  f"{slides['samples']} slides, {slides['tiles']} tiles; slide inference "
                  f"(opening, tissue detection, tiling, reading, embedding) "
                  f"{fmt(slides['seconds_per_1000_tiles'])} s per 1,000 tiles.", ""]
        rows = [["top-K zero-shot", slides["accuracy"], slides["balanced_accuracy"]],
                ["chance", slides["chance"]["accuracy"], slides["chance"]["balanced_accuracy"]],
                ["majority class", slides["majority"]["accuracy"],
                 slides["majority"]["balanced_accuracy"]]]
        lines += markdown_table(["", "accuracy", "balanced accuracy"], rows)
        on_val = slides.get("validation_balanced_accuracy_by_k") or {}
        lines += ["", f"K = {slides['k']} ({slides.get('k_source', 'config')}). Balanced "
                  "accuracy by K — on the validation slides (what chose K) and, for "
                  "reading only, on these test slides:", ""]
        by_k = slides.get("balanced_accuracy_by_k") or {}
        lines += markdown_table(["K", "validation", "test"],
                                [[k, on_val.get(k, on_val.get(str(k))), v]
                                 for k, v in by_k.items()])
    else:
        lines += ["No slides in this split (the data folder has no `slides.csv`)."]
    retrieval = main["retrieval"]
    lines += ["", "## Caption <-> tile retrieval", "",
              f"{retrieval['tiles']} held-out tiles. A hit is a tile (caption) of the same "
              "class; *own*: only the tile's own caption counts. Random: the exact expected "
              "hit rate of a random ranking.", ""]
    rows = [[f"Recall@{k}", retrieval[f"caption_to_tile_recall@{k}"],
             retrieval[f"tile_to_caption_recall@{k}"], retrieval[f"random_recall@{k}"],
             retrieval[f"own_caption_to_tile_recall@{k}"], retrieval[f"own_random_recall@{k}"]]
            for k in retrieval["ks"]]
    lines += markdown_table(["", "caption → tile", "tile → caption", "random",
                             "own caption → tile", "own random"], rows)
    if len(results) > 1:
        lines += ["", "## Companions", ""]
        rows = [[name, metric(r["tile_zero_shot"], r["tile_zero_shot"]["own_stain"],
                              "ensemble", "balanced_accuracy"),
                 metric(r, "slide_zero_shot", "balanced_accuracy"),
                 metric(r, "retrieval", "caption_to_tile_recall@1")]
                for name, r in results.items()]
        lines += markdown_table(["model", "tile balanced accuracy", "slide balanced accuracy",
                                 "caption → tile R@1"], rows)
    lines += ["", "## Headline", ""]
    lines += markdown_table(["metric", "value", "target"],
                            [[k, v, TARGETS.get(k)] for k, v in summary.items()])
    lines += ["", "## Figures", "", "- `curves.png`: training and validation loss, temperature",
              "- `confusion_matrix.png`: tile zero-shot confusion (ensemble prompts)",
              "- `slide_heatmap.png`: tumour probability per tile over a held-out slide "
              "(dashed: the annotated tumour regions)", ""]
    return "\n".join(lines)


def print_summary(summary: Mapping[str, Any], out: str,
                  bad: list[tuple[str, str]] | None = None) -> None:
    """The console summary: headline figures beside their targets."""
    console.print(summary_table(f"Pathology run {out}", summary, {}, TARGETS))
    print_bad_samples(bad or [])
