"""The run report: headline figures, the paper's three claims, markdown and a summary table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from domains.remote_sensing import cards

TARGETS = {"s2_zero_shot_accuracy": 0.80, "s1_zero_shot_accuracy": 0.55,
           "mixed_ndcg@10": 0.70}


def _get(tree: dict[str, Any], *path: str) -> float | None:
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree if isinstance(tree, float | int) else None


def _relative(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b - 1


def headline(results: dict[str, dict[str, Any]], main_is_geo: bool) -> dict[str, Any]:
    """The headline numbers and the three claims, from every variant's metrics."""
    main = results["main"]
    closp = results.get("geo") if main_is_geo else main
    geo = main if main_is_geo else results.get("geo")
    figures: dict[str, Any] = {
        "s2_zero_shot_accuracy": _get(main, "zero_shot", "s2", "accuracy"),
        "s1_zero_shot_accuracy": _get(main, "zero_shot", "s1", "accuracy"),
        "s2_zero_shot_map": _get(main, "zero_shot", "s2", "map"),
        "s1_zero_shot_map": _get(main, "zero_shot", "s1", "map"),
        "mixed_ndcg@10": _get(main, "retrieval", "mixed", "ndcg@10"),
        "mixed_ndcg@1000": _get(main, "retrieval", "mixed", "ndcg@1000"),
    }
    claims: dict[str, Any] = {}
    if "rgb" in results:
        ms, rgb = _get(main, "retrieval", "s2", "ndcg@10"), _get(results["rgb"], "retrieval", "s2",
                                                                 "ndcg@10")
        gain = _relative(ms, rgb)
        claims["multispectral_beats_rgb"] = {"13-band s2 ndcg@10": ms, "rgb s2 ndcg@10": rgb,
                                             "relative_gain": gain,
                                             "holds": gain is not None and gain >= 0.10}
    if "s1_alone" in results:
        unified = _get(main, "retrieval", "s1", "ndcg@10")
        alone = _get(results["s1_alone"], "retrieval", "s1", "ndcg@10")
        claims["unified_lifts_s1"] = {"unified s1 ndcg@10": unified, "s1-alone ndcg@10": alone,
                                      "relative_gain": _relative(unified, alone),
                                      "holds": None not in (unified, alone) and unified > alone}
    if closp is not None and geo is not None:
        crisis_closp = _get(closp, "crisis", "ndcg@10")
        crisis_geo = _get(geo, "crisis_fused", "ndcg@10")
        lc_closp = _get(closp, "retrieval", "mixed", "ndcg@10")
        lc_geo = _get(geo, "retrieval", "mixed", "ndcg@10")
        crisis_gain, lc_change = _relative(crisis_geo, crisis_closp), _relative(lc_geo, lc_closp)
        claims["geo_wins_on_location"] = {
            "closp crisis ndcg@10": crisis_closp, "geoclosp crisis ndcg@10": crisis_geo,
            "crisis_relative_gain": crisis_gain, "closp land-cover ndcg@10": lc_closp,
            "geoclosp land-cover ndcg@10": lc_geo, "land_cover_relative_change": lc_change,
            "holds": crisis_gain is not None and lc_change is not None
            and crisis_gain >= 0.20 and lc_change >= -0.05}
    return {"figures": figures, "claims": claims}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return "—" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1%}"


def markdown_report(results: dict[str, dict[str, Any]], summary: dict[str, Any],
                    run: dict[str, Any], timing: dict[str, Any]) -> str:
    """The run's `report.md`."""
    lines = [f"# Run report: {run['model']}", "",
             f"Data: `{run['data'].get('root') or 'default synthetic archive'}` "
             f"({run['data']['layout']}); seed {run['seed']}; loss `{run['loss']['type']}`; "
             f"{run['trainer']['max_epochs']} epochs per model; training took "
             f"{timing.get('training_seconds', 0):.0f} s.", "",
             "## Headline (held-out test split)", "", "| metric | value | target |",
             "| --- | --- | --- |"]
    for key, value in summary["figures"].items():
        lines.append(f"| {key} | {_fmt(value)} | {_fmt(TARGETS.get(key))} |")
    lines += ["", "## The paper's claims", "", "| claim | figures | holds |", "| --- | --- | --- |"]
    for name, claim in summary["claims"].items():
        shown = "; ".join(f"{k} {_pct(v) if 'relative' in k else _fmt(v)}"
                          for k, v in claim.items() if k != "holds")
        lines.append(f"| {name} | {shown} | {_fmt(claim['holds'])} |")
    lines += ["", "## Zero-shot land cover (dominant class, 9 Dynamic World classes)", "",
              "| model | sensor | accuracy | macro-F1 | mAP | scenes |",
              "| --- | --- | --- | --- | --- | --- |"]
    for variant, result in results.items():
        for sensor, zs in result.get("zero_shot", {}).items():
            lines.append(f"| {variant} | {sensor} | {_fmt(zs['accuracy'])} | "
                         f"{_fmt(zs['macro_f1'])} | {_fmt(zs['map'])} | {zs['n']} |")
    lines += ["", "## Text → image retrieval (graded relevance = shared labels)", "",
              "| model | archive | nDCG@10 | nDCG@100 | nDCG@1000 | mAP | R@1 | R@10 |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for variant, result in results.items():
        for archive, r in result.get("retrieval", {}).items():
            lines.append(f"| {variant} | {archive} | {_fmt(r['ndcg@10'])} | "
                         f"{_fmt(r['ndcg@100'])} | {_fmt(r['ndcg@1000'])} | {_fmt(r['map'])} | "
                         f"{_fmt(r['recall@1'])} | {_fmt(r['recall@10'])} |")
    lines += ["", "## Cross-sensor retrieval (paired subset)", "",
              "| model | direction | R@1 | R@10 | nDCG@10 |", "| --- | --- | --- | --- | --- |"]
    for variant, result in results.items():
        for direction, r in result.get("cross_sensor", {}).items():
            if r:
                lines.append(f"| {variant} | {direction} | {_fmt(r['recall@1'])} | "
                             f"{_fmt(r['recall@10'])} | {_fmt(r['ndcg@10'])} |")
    lines += ["", "## Location-dependent retrieval (crisis events)", "",
              "Queries: " + ", ".join(f"“{t}”" for t in cards.crisis_tags())
              + ", each asked about the place of its event. Relevant: scenes inside the "
              "event. CLOSP ranks by text–image similarity; GeoCLOSP adds w × the similarity "
              "of the place's and the scene's location embeddings (w chosen on the "
              "validation split). Land-cover queries carry no place: GeoCLOSP ranks them "
              "by image alone.", "",
              "| model | ranking | nDCG@10 | nDCG@100 | mAP |", "| --- | --- | --- | --- | --- |"]
    for variant, result in results.items():
        for key, label in (("crisis", "image"), ("crisis_fused", "image ⊕ location")):
            if key in result:
                r = result[key]
                if "proximity_weight" in r:
                    label += f" (w = {r['proximity_weight']:g})"
                lines.append(f"| {variant} | {label} | {_fmt(r['ndcg@10'])} | "
                             f"{_fmt(r['ndcg@100'])} | {_fmt(r['map'])} |")
    lines += ["", "## Figures", "", "![training curves](curves.png)", "",
              "![zero-shot confusion, S2](confusion_s2.png) ![zero-shot confusion, S1]"
              "(confusion_s1.png)", "", "![retrieval gallery](gallery.png)", ""]
    return "\n".join(lines)


def print_summary(summary: dict[str, Any], out: str) -> None:
    """A short table of the headline figures and where the report is."""
    table = Table(title="CLOSP run summary (held-out split)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for key, value in summary["figures"].items():
        table.add_row(key, _fmt(value), _fmt(TARGETS.get(key)))
    for name, claim in summary["claims"].items():
        gain = claim.get("relative_gain", claim.get("crisis_relative_gain"))
        table.add_row(name, _pct(gain), "holds" if claim["holds"] else "does not hold")
    console = Console()
    console.print(table)
    console.print(f"Report: [bold]{out}/report.md[/]  metrics: {out}/metrics.json")
