"""The run report: headline figures beside their baselines, the paper's claims with their
fair baselines, markdown, a claims chart and a console summary.

Claims (each a dict whose first two figures are its two sides, then ``relative_gain`` —
the first side over the second, minus 1 — and ``holds``; ``holds`` is ``None`` when a
side was not measured):

- ``multispectral_beats_rgb``: 13-band S2 nDCG@10 at least 10 % above the RGB model's;
- ``unified_lifts_s1``: S1 nDCG@10 of the unified model above the S1-alone model's;
- ``geo_text_only_beats_closp``: GeoCLOSP's fused scene index (image ⊕ location) beats
  CLOSP's image index on crisis queries without any place (nDCG@10);
- ``geo_place_beats_distance_rerank`` / ``geo_place_beats_bbox_filter``: GeoCLOSP's place
  ranking beats CLOSP re-ranked by distance to the same place / filtered to a box around
  it (crisis nDCG@10);
- ``soft_beats_infonce_crisis`` (when an ``infonce`` variant was trained): the main model
  (soft targets) beats the same model trained with InfoNCE on crisis queries (nDCG@10).

A single run's verdicts rest on one seed (the report says so); ``--seeds`` aggregates them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402

from core.atomic import atomic_write_bytes  # noqa: E402
from core.runs import (  # noqa: E402
    claim_figures,
    markdown_table,
    metric,
    print_bad_samples,
    relative_change,
    summary_table,
)
from domains.remote_sensing import cards  # noqa: E402
from domains.remote_sensing.evaluation import CLOUDY_THRESHOLD  # noqa: E402

TARGETS = {"s2_zero_shot_accuracy": 0.80, "s1_zero_shot_accuracy": 0.55,
           "held_out_s2_zero_shot_accuracy": 0.85, "held_out_s1_zero_shot_accuracy": 0.75,
           "mixed_ndcg@10": 0.70, "held_out_mixed_ndcg@10_ratio": 0.80}
SINGLE_SEED = ("Every figure and verdict below comes from one training seed; "
               "`python -m domains.remote_sensing.train --seeds 0 1 2` trains every variant "
               "per seed and reports mean ± sd, a claim holding only when its paired gain is "
               "positive in every seed.")


def _figures(main: dict[str, Any]) -> dict[str, Any]:
    """The flat headline figures of the main model, each beside its baselines."""
    mixed = ("retrieval", "mixed")
    training = metric(main, *mixed, "ndcg@10")
    held_out = metric(main, "retrieval_held_out", "mixed", "ndcg@10")
    return {
        "s2_zero_shot_accuracy": metric(main, "zero_shot", "s2", "accuracy"),
        "s1_zero_shot_accuracy": metric(main, "zero_shot", "s1", "accuracy"),
        "held_out_s2_zero_shot_accuracy": metric(main, "zero_shot_held_out", "s2", "accuracy"),
        "held_out_s1_zero_shot_accuracy": metric(main, "zero_shot_held_out", "s1", "accuracy"),
        "s2_zero_shot_majority_accuracy": metric(main, "zero_shot", "s2", "majority_accuracy"),
        "s1_zero_shot_majority_accuracy": metric(main, "zero_shot", "s1", "majority_accuracy"),
        "zero_shot_chance_accuracy": 1.0 / len(cards.land_cover_classes()),
        "s2_zero_shot_map": metric(main, "zero_shot", "s2", "map"),
        "s1_zero_shot_map": metric(main, "zero_shot", "s1", "map"),
        "mixed_ndcg@10": training,
        "mixed_ndcg@100": metric(main, *mixed, "ndcg@100"),
        "held_out_mixed_ndcg@10": held_out,
        "held_out_mixed_ndcg@10_ratio": (None if held_out is None or not training
                                         else held_out / training),
        "mixed_recall@10": metric(main, *mixed, "recall@10"),
        "random_mixed_ndcg@10": metric(main, "retrieval_baselines", "mixed", "random",
                                       "ndcg@10"),
        "label_prior_mixed_ndcg@10": metric(main, "retrieval_baselines", "mixed",
                                            "label_prior", "ndcg@10"),
        "random_mixed_recall@10": metric(main, "retrieval_baselines", "mixed", "random",
                                         "recall@10"),
        "label_prior_mixed_recall@10": metric(main, "retrieval_baselines", "mixed",
                                              "label_prior", "recall@10"),
        "s2_zero_shot_accuracy_clear": metric(main, "zero_shot_subsets", "s2_clear", "accuracy"),
        "s2_zero_shot_accuracy_cloudy": metric(main, "zero_shot_subsets", "s2_cloudy",
                                               "accuracy"),
        "s1_zero_shot_accuracy_enl1": metric(main, "zero_shot_subsets", "s1_enl1", "accuracy"),
    }


def _paired(name_a: str, a: float | None, name_b: str, b: float | None,
            **extra: Any) -> dict[str, Any]:
    """A claim: its two sides, the relative gain of a over b, holds when a > b."""
    gain = relative_change(a, b)
    return {name_a: a, name_b: b, "relative_gain": gain, **extra,
            "holds": None if gain is None else gain > 0}


def _geo_claims(closp: dict[str, Any], geo: dict[str, Any]) -> dict[str, Any]:
    """GeoCLOSP's claims: text-only (the paper's setting) and place queries vs baselines."""
    claims: dict[str, Any] = {}
    random = metric(closp, "crisis_baselines", "random", "ndcg@10")
    prior = metric(closp, "crisis_baselines", "label_prior", "ndcg@10")
    claims["geo_text_only_beats_closp"] = _paired(
        "geoclosp fused crisis ndcg@10", metric(geo, "text_only", "crisis", "ndcg@10"),
        "closp crisis ndcg@10", metric(closp, "crisis", "ndcg@10"),
        **{"geoclosp image-only crisis ndcg@10": metric(geo, "crisis", "ndcg@10"),
           "fusion weight": metric(geo, "text_only", "fusion_weight"),
           "geoclosp fused land-cover ndcg@10": metric(geo, "text_only", "mixed", "ndcg@10"),
           "closp land-cover ndcg@10": metric(closp, "retrieval", "mixed", "ndcg@10"),
           "random crisis ndcg@10": random, "label-prior crisis ndcg@10": prior})
    place = metric(geo, "crisis_fused", "ndcg@10")
    claims["geo_place_beats_distance_rerank"] = _paired(
        "geoclosp place ndcg@10", place,
        "closp + distance re-rank ndcg@10", metric(closp, "crisis_distance", "ndcg@10"),
        **{"place weight": metric(geo, "crisis_fused", "proximity_weight"),
           "distance weight (per 1000 km)": metric(closp, "crisis_distance", "distance_weight"),
           "random crisis ndcg@10": random})
    claims["geo_place_beats_bbox_filter"] = _paired(
        "geoclosp place ndcg@10", place,
        "closp + bbox filter ndcg@10", metric(closp, "crisis_bbox", "ndcg@10"),
        **{"box half-size km": metric(closp, "crisis_bbox", "half_size_km"),
           "random crisis ndcg@10": random})
    return claims


def headline(results: dict[str, dict[str, Any]], main_is_geo: bool) -> dict[str, Any]:
    """The headline numbers and the claims, from every variant's metrics.

    Args:
        results: Variant name -> its metrics (:func:`evaluation.evaluate_model`).
        main_is_geo: Whether the main model is GeoCLOSP (its ``geo`` companion is CLOSP).

    Returns:
        ``figures`` (flat name -> float or None), ``claims`` (name -> dict with
        ``relative_gain`` and ``holds``) and ``zero_shot_subsets``.
    """
    main = results["main"]
    closp = results.get("geo") if main_is_geo else main
    geo = main if main_is_geo else results.get("geo")
    claims: dict[str, Any] = {}
    if "rgb" in results:
        ms = metric(main, "retrieval", "s2", "ndcg@10")
        rgb = metric(results["rgb"], "retrieval", "s2", "ndcg@10")
        gain = relative_change(ms, rgb)
        claims["multispectral_beats_rgb"] = {
            "13-band s2 ndcg@10": ms, "rgb s2 ndcg@10": rgb, "relative_gain": gain,
            "random s2 ndcg@10": metric(main, "retrieval_baselines", "s2", "random", "ndcg@10"),
            "holds": gain is not None and gain >= 0.10}
    if "s1_alone" in results:
        unified = metric(main, "retrieval", "s1", "ndcg@10")
        alone = metric(results["s1_alone"], "retrieval", "s1", "ndcg@10")
        claims["unified_lifts_s1"] = {
            "unified s1 ndcg@10": unified, "s1-alone ndcg@10": alone,
            "relative_gain": relative_change(unified, alone),
            "random s1 ndcg@10": metric(main, "retrieval_baselines", "s1", "random", "ndcg@10"),
            "holds": None not in (unified, alone) and unified > alone}
    if closp is not None and geo is not None:
        claims.update(_geo_claims(closp, geo))
    if "infonce" in results:
        claims["soft_beats_infonce_crisis"] = _paired(
            "soft-target crisis ndcg@10", metric(main, "crisis", "ndcg@10"),
            "infonce crisis ndcg@10", metric(results["infonce"], "crisis", "ndcg@10"),
            **{"random crisis ndcg@10": metric(main, "crisis_baselines", "random", "ndcg@10")})
    subsets = {name: {k: v for k, v in figures_.items() if k != "macro_f1"}
               for name, figures_ in main.get("zero_shot_subsets", {}).items()}
    return {"figures": _figures(main), "claims": claims, "zero_shot_subsets": subsets}


def verdict(claim: dict[str, Any]) -> str:
    """``holds``, ``does not hold`` or ``not measured``."""
    holds = claim.get("holds")
    return "not measured" if holds is None else "holds" if holds else "does not hold"


def _baseline_cells(name: str, figures: dict[str, Any]) -> tuple[Any, Any]:
    """The (random or chance, majority or label prior) figures beside a headline figure."""
    if "zero_shot_accuracy" in name:
        sensor = "s1" if "s1_" in name else "s2"
        return figures.get("zero_shot_chance_accuracy"), \
            figures.get(f"{sensor}_zero_shot_majority_accuracy")
    if name in ("mixed_ndcg@10", "held_out_mixed_ndcg@10", "mixed_recall@10"):
        key = name.removeprefix("held_out_")
        return figures.get(f"random_{key}"), figures.get(f"label_prior_{key}")
    return None, None


def _headline_lines(summary: dict[str, Any]) -> list[str]:
    figures = summary["figures"]
    shown = [k for k in figures if not k.startswith(("random_", "label_prior_"))
             and "majority" not in k and "chance" not in k]
    lines = ["## Headline (held-out test split)", "",
             "Beside each figure: chance (zero-shot: 1/9) or the exact expectation of a "
             "random ranking, and the majority class (zero-shot) or the label prior "
             "(retrieval: scenes ranked by how common their labels are in the training "
             "split, ignoring the query).", ""]
    lines += markdown_table(["metric", "value", "chance / random", "majority / label prior",
                             "target"],
                            [(k, figures[k], *_baseline_cells(k, figures), TARGETS.get(k))
                             for k in shown])
    lines += ["", "## The claims", "",
              "GeoCLOSP text-only: crisis tags asked without a place; GeoCLOSP ranks scenes "
              "indexed by normalize((1 − w)·image + w·location), w chosen on validation; "
              "CLOSP by image alone. Place queries: the same tags asked about the event's "
              "centre; GeoCLOSP adds w_p × place–scene location similarity; the baselines "
              "re-rank CLOSP's text ranking by haversine distance (text − λ·km/1000) or put "
              "the scenes inside a box of half-size h km first (λ, h chosen on validation). "
              "A claim holds when its first figure beats its second (multispectral: by "
              "≥ 10 %).", ""]
    lines += markdown_table(["claim", "figures", "verdict"],
                            [(name, claim_figures(claim), verdict(claim))
                             for name, claim in summary["claims"].items()])
    return lines


def _zero_shot_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## Open-vocabulary zero-shot land cover (dominant class, 9 classes)", "",
             "Training phrasings: the captions card's class names and templates (the "
             "classifier's defaults). Held-out phrasings: names and templates never used in "
             "training (`held_out_phrasings.yaml`). Majority: always answering the test "
             "scenes' most frequent class; chance: 1/9.", ""]
    rows = []
    for variant, result in results.items():
        for key, phrasing in (("zero_shot", "training"), ("zero_shot_held_out", "held-out")):
            for sensor, zs in result.get(key, {}).items():
                rows.append((variant, sensor, phrasing, zs.get("accuracy"), zs.get("macro_f1"),
                             zs.get("map"), zs.get("majority_accuracy"),
                             zs.get("chance_accuracy"), zs.get("n")))
    lines += markdown_table(["model", "sensor", "phrasing", "accuracy", "macro-F1", "mAP",
                             "majority", "chance", "scenes"], rows)
    lines += ["", "## Zero-shot under clouds and speckle", "",
              f"S2 test scenes split by their cloud fraction (SCL cloud or cirrus; cloudy: "
              f"≥ {CLOUDY_THRESHOLD:g}); S1 test scenes as read (GRD speckle) and brought to "
              f"single-look speckle (ENL 1: Gamma speckle multiplied into the linear "
              f"intensity, seeded by scene id). Beside each: always answering the subset's "
              f"most frequent class (majority) and uniform guessing (chance).", ""]
    lines += markdown_table(
        ["model", "subset", "scenes", "accuracy", "macro-F1", "majority", "chance"],
        [(variant, name, s["n"], s["accuracy"], s["macro_f1"], s["majority_accuracy"],
          s["chance_accuracy"])
         for variant, result in results.items()
         for name, s in result.get("zero_shot_subsets", {}).items()])
    return lines


def _retrieval_row(model: str, archive: str, phrasing: str, r: dict[str, Any]) -> tuple:
    return (model, archive, phrasing, r.get("ndcg@10"), r.get("ndcg@100"), r.get("map"),
            r.get("recall@1"), r.get("recall@10"))


def _retrieval_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["## Text → image retrieval", "",
             "One query per frequent land-cover label set of the test scenes. nDCG@k: graded "
             "relevance = number of labels query and scene share. mAP and Recall@k: a scene "
             "is relevant only when it carries every label of the query. Random: the exact "
             "expectation of a uniformly random ranking; label prior: every query ranks the "
             "scenes by the summed training-split frequency of their labels. nDCG@1000 is "
             "in `metrics.json`.", ""]
    rows = []
    for variant, result in results.items():
        for archive, r in result.get("retrieval", {}).items():
            rows.append(_retrieval_row(variant, archive, "training", r))
            held = result.get("retrieval_held_out", {}).get(archive)
            if held:
                rows.append(_retrieval_row(variant, archive, "held-out", held))
            for name, baseline in result.get("retrieval_baselines", {}).get(archive, {}).items():
                rows.append(_retrieval_row(name.replace("_", " "), archive, "—", baseline))
    lines += markdown_table(["model", "archive", "phrasing", "nDCG@10", "nDCG@100", "mAP",
                             "R@1", "R@10"], rows)
    lines += ["", "## Cross-sensor retrieval (paired subset)", "",
              "Recall@k: the same place seen by the other sensor; nDCG@10: shared labels.", ""]
    rows = []
    for variant, result in results.items():
        for direction, r in result.get("cross_sensor", {}).items():
            if r:
                rows.append((variant, direction, r["recall@1"], r["recall@10"], r["ndcg@10"]))
                rows += [(name.replace("_", " "), direction, r[name]["recall@1"],
                          r[name]["recall@10"], r[name]["ndcg@10"])
                         for name in ("random", "label_prior") if name in r]
    lines += markdown_table(["model", "direction", "R@1", "R@10", "nDCG@10"], rows)
    return lines


def _crisis_row(model: str, ranking: str, r: dict[str, Any]) -> tuple:
    return (model, ranking, r.get("ndcg@10"), r.get("ndcg@100"), r.get("map"),
            r.get("recall@10"))


def _crisis_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    tags = ", ".join(f"“{t}”" for t in cards.crisis_tags())
    lines = ["## Crisis retrieval", "",
             f"Queries: {tags}. Relevant: the scenes tagged with the crisis (inside the "
             "event's box during its window). Random and label-prior rows ignore query "
             "and place.", "", "### Text-only queries (no place: the paper's setting)", ""]
    rows, place_rows, baselines = [], [], None
    for variant, result in results.items():
        if "crisis" not in result:
            continue
        baselines = baselines or result.get("crisis_baselines")
        rows.append(_crisis_row(variant, "image", result["crisis"]))
        fused = result.get("text_only", {})
        if "crisis" in fused:
            rows.append(_crisis_row(variant, f"image ⊕ location (w = {fused['fusion_weight']:g})",
                                    fused["crisis"]))
        if "crisis_fused" in result:
            r = result["crisis_fused"]
            place_rows.append(_crisis_row(
                variant, f"text + place similarity (w_p = {r['proximity_weight']:g})", r))
        if "crisis_distance" in result:
            r = result["crisis_distance"]
            place_rows.append(_crisis_row(
                variant, f"text − λ·km/1000 (λ = {r['distance_weight']:g})", r))
        if "crisis_bbox" in result:
            r = result["crisis_bbox"]
            place_rows.append(_crisis_row(
                variant, f"bbox ± {r['half_size_km']:g} km first, then text", r))
    base_rows = [_crisis_row(name.replace("_", " "), "—", r)
                 for name, r in (baselines or {}).items()]
    header = ["model", "ranking", "nDCG@10", "nDCG@100", "mAP", "R@10"]
    lines += markdown_table(header, rows + base_rows)
    lines += ["", "### Place queries (each tag asked about its event's centre)", ""]
    lines += markdown_table(header, place_rows + base_rows)
    return lines


def markdown_report(results: dict[str, dict[str, Any]], summary: dict[str, Any],
                    run: dict[str, Any], timing: dict[str, Any]) -> str:
    """The run's `report.md`."""
    lines = [f"# Run report: {run['model']}", "",
             f"Data: `{run['data'].get('root') or 'default synthetic archive'}` "
             f"({run['data']['layout']}); seed {run['seed']}; loss `{run['loss']['type']}`; "
             f"{run['trainer']['max_epochs']} epochs per model; " + (
                 f"training took {timing['training_seconds']:.0f} s."
                 if timing.get("training_seconds") is not None
                 else "evaluation of a trained run (training time: see the run's report)."),
             "", SINGLE_SEED, ""]
    lines += _headline_lines(summary)
    lines += [""] + _zero_shot_lines(results)
    lines += [""] + _retrieval_lines(results)
    lines += [""] + _crisis_lines(results)
    lines += ["", "## Figures", "", "![the claims, each side by side](claims.png)", "",
              "![training curves](curves.png)", "",
              "![zero-shot confusion, S2](confusion_s2.png) ![zero-shot confusion, S1]"
              "(confusion_s1.png)", "", "![retrieval gallery](gallery.png)", ""]
    return "\n".join(lines)


def plot_claims(claims: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """A bar chart of each claim's two sides (its first two figures), verdict in the title,
    and the random-ranking level (a dashed line) where the claim records one.

    Returns:
        The PNG path, or ``None`` when no claim has both sides measured.
    """
    pairs = []
    for name, claim in claims.items():
        (label_a, a), (label_b, b) = list(claim.items())[:2]
        random = next((v for k, v in claim.items() if k.startswith("random")), None)
        if isinstance(a, float | int) and isinstance(b, float | int):
            pairs.append((name, label_a, a, label_b, b, verdict(claim), random))
    if not pairs:
        return None
    figure, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3.6), squeeze=False)
    for ax, (name, label_a, a, label_b, b, held, random) in zip(axes[0], pairs, strict=True):
        ax.bar([0, 1], [a, b], color=["tab:blue", "tab:gray"])
        if random is not None:
            ax.axhline(random, color="tab:red", linestyle="--", linewidth=1)
            ax.text(1.45, random, "random", color="tab:red", fontsize=7, va="bottom", ha="right")
        ax.set_xticks([0, 1], [label_a.replace(" ndcg@10", ""), label_b.replace(" ndcg@10", "")],
                      rotation=20, ha="right", fontsize=7)
        ax.set_ylim(0, max(1.0, a, b) * 1.05)
        ax.set_title(f"{name.replace('_', ' ')}\n({held})", fontsize=8)
        ax.set_ylabel("nDCG@10", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, buffer.getvalue())


def print_summary(summary: dict[str, Any], out: str,
                  bad_samples: list[tuple[str, str]] | None = None) -> None:
    """A short table of the headline figures, the skipped scenes, and where the report is."""
    console = Console()
    console.print(summary_table("CLOSP run summary (held-out split)", summary["figures"],
                                summary["claims"], TARGETS))
    print_bad_samples(bad_samples or [])
    console.print(f"Report: [bold]{out}/report.md[/]  metrics: {out}/metrics.json")
