"""The run report: headline figures, the paper's three claims, markdown and a summary table."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from core.runs import (
    claim_figures,
    markdown_table,
    metric,
    print_bad_samples,
    relative_change,
    summary_table,
)
from domains.remote_sensing import cards
from domains.remote_sensing.evaluation import CLOUDY_THRESHOLD

TARGETS = {"s2_zero_shot_accuracy": 0.80, "s1_zero_shot_accuracy": 0.55,
           "mixed_ndcg@10": 0.70}


def headline(results: dict[str, dict[str, Any]], main_is_geo: bool) -> dict[str, Any]:
    """The headline numbers and the three claims, from every variant's metrics."""
    main = results["main"]
    closp = results.get("geo") if main_is_geo else main
    geo = main if main_is_geo else results.get("geo")
    figures: dict[str, Any] = {
        "s2_zero_shot_accuracy": metric(main, "zero_shot", "s2", "accuracy"),
        "s1_zero_shot_accuracy": metric(main, "zero_shot", "s1", "accuracy"),
        "s2_zero_shot_map": metric(main, "zero_shot", "s2", "map"),
        "s1_zero_shot_map": metric(main, "zero_shot", "s1", "map"),
        "mixed_ndcg@10": metric(main, "retrieval", "mixed", "ndcg@10"),
        "mixed_ndcg@1000": metric(main, "retrieval", "mixed", "ndcg@1000"),
        "s2_zero_shot_accuracy_clear": metric(main, "zero_shot_subsets", "s2_clear", "accuracy"),
        "s2_zero_shot_accuracy_cloudy": metric(main, "zero_shot_subsets", "s2_cloudy",
                                               "accuracy"),
        "s1_zero_shot_accuracy_enl1": metric(main, "zero_shot_subsets", "s1_enl1", "accuracy"),
    }
    claims: dict[str, Any] = {}
    if "rgb" in results:
        ms = metric(main, "retrieval", "s2", "ndcg@10")
        rgb = metric(results["rgb"], "retrieval", "s2", "ndcg@10")
        gain = relative_change(ms, rgb)
        claims["multispectral_beats_rgb"] = {"13-band s2 ndcg@10": ms, "rgb s2 ndcg@10": rgb,
                                             "relative_gain": gain,
                                             "holds": gain is not None and gain >= 0.10}
    if "s1_alone" in results:
        unified = metric(main, "retrieval", "s1", "ndcg@10")
        alone = metric(results["s1_alone"], "retrieval", "s1", "ndcg@10")
        claims["unified_lifts_s1"] = {"unified s1 ndcg@10": unified, "s1-alone ndcg@10": alone,
                                      "relative_gain": relative_change(unified, alone),
                                      "holds": None not in (unified, alone) and unified > alone}
    if closp is not None and geo is not None:
        crisis_closp = metric(closp, "crisis", "ndcg@10")
        crisis_geo = metric(geo, "crisis_fused", "ndcg@10")
        lc_closp = metric(closp, "retrieval", "mixed", "ndcg@10")
        lc_geo = metric(geo, "retrieval", "mixed", "ndcg@10")
        crisis_gain = relative_change(crisis_geo, crisis_closp)
        lc_change = relative_change(lc_geo, lc_closp)
        claims["geo_wins_on_location"] = {
            "closp crisis ndcg@10": crisis_closp, "geoclosp crisis ndcg@10": crisis_geo,
            "crisis_relative_gain": crisis_gain, "closp land-cover ndcg@10": lc_closp,
            "geoclosp land-cover ndcg@10": lc_geo, "land_cover_relative_change": lc_change,
            "holds": crisis_gain is not None and lc_change is not None
            and crisis_gain >= 0.20 and lc_change >= -0.05}
    subsets = {name: {k: v for k, v in figures_.items() if k != "macro_f1"}
               for name, figures_ in main.get("zero_shot_subsets", {}).items()}
    return {"figures": figures, "claims": claims, "zero_shot_subsets": subsets}


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
             "",
             "## Headline (held-out test split)", ""]
    lines += markdown_table(["metric", "value", "target"],
                            [(k, v, TARGETS.get(k)) for k, v in summary["figures"].items()])
    lines += ["", "## The paper's claims", ""]
    lines += markdown_table(["claim", "figures", "holds"],
                            [(name, claim_figures(claim), claim["holds"])
                             for name, claim in summary["claims"].items()])
    lines += ["", "## Zero-shot land cover (dominant class, 9 Dynamic World classes)", ""]
    lines += markdown_table(
        ["model", "sensor", "accuracy", "macro-F1", "mAP", "scenes"],
        [(variant, sensor, zs["accuracy"], zs["macro_f1"], zs["map"], zs["n"])
         for variant, result in results.items()
         for sensor, zs in result.get("zero_shot", {}).items()])
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
    lines += ["", "## Text → image retrieval (graded relevance = shared labels)", ""]
    lines += markdown_table(
        ["model", "archive", "nDCG@10", "nDCG@100", "nDCG@1000", "mAP", "R@1", "R@10"],
        [(variant, archive, r["ndcg@10"], r["ndcg@100"], r["ndcg@1000"], r["map"],
          r["recall@1"], r["recall@10"])
         for variant, result in results.items()
         for archive, r in result.get("retrieval", {}).items()])
    lines += ["", "## Cross-sensor retrieval (paired subset)", ""]
    lines += markdown_table(
        ["model", "direction", "R@1", "R@10", "nDCG@10"],
        [(variant, direction, r["recall@1"], r["recall@10"], r["ndcg@10"])
         for variant, result in results.items()
         for direction, r in result.get("cross_sensor", {}).items() if r])
    lines += ["", "## Location-dependent retrieval (crisis events)", "",
              "Queries: " + ", ".join(f"“{t}”" for t in cards.crisis_tags())
              + ", each asked about the place of its event. Relevant: scenes inside the "
              "event. CLOSP ranks by text–image similarity; GeoCLOSP adds w × the similarity "
              "of the place's and the scene's location embeddings (w chosen on the "
              "validation split). Land-cover queries carry no place: GeoCLOSP ranks them "
              "by image alone.", ""]
    crisis_rows = []
    for variant, result in results.items():
        for key, label in (("crisis", "image"), ("crisis_fused", "image ⊕ location")):
            if key in result:
                r = result[key]
                if "proximity_weight" in r:
                    label += f" (w = {r['proximity_weight']:g})"
                crisis_rows.append((variant, label, r["ndcg@10"], r["ndcg@100"], r["map"]))
    lines += markdown_table(["model", "ranking", "nDCG@10", "nDCG@100", "mAP"], crisis_rows)
    lines += ["", "## Figures", "", "![training curves](curves.png)", "",
              "![zero-shot confusion, S2](confusion_s2.png) ![zero-shot confusion, S1]"
              "(confusion_s1.png)", "", "![retrieval gallery](gallery.png)", ""]
    return "\n".join(lines)


def print_summary(summary: dict[str, Any], out: str,
                  bad_samples: list[tuple[str, str]] | None = None) -> None:
    """A short table of the headline figures, the skipped scenes, and where the report is."""
    console = Console()
    console.print(summary_table("CLOSP run summary (held-out split)", summary["figures"],
                                summary["claims"], TARGETS))
    print_bad_samples(bad_samples or [])
    console.print(f"Report: [bold]{out}/report.md[/]  metrics: {out}/metrics.json")
