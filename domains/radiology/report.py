"""The radiology run's headline figures, ``report.md`` and console summary.

Rendered with the report helpers every domain shares (:mod:`core.runs`: ``markdown_table``,
``summary_table``, ``print_bad_samples``, ``fmt``). What is about radiology: the zero-shot
AUROC table per finding (names-only and description prompts side by side, each with its
bootstrap interval, beside the random and label-prior baselines) and the retrieval table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.runs import console, fmt, markdown_table, metric, print_bad_samples, summary_table

TARGETS = {"mean_auroc": 0.85, "report_to_image_recall@10": 0.5}


def headline(results: Mapping[str, Any]) -> dict[str, Any]:
    """The headline figures of the main model (``metrics.json["summary"]``).

    ``mean_auroc`` is the names-only (CheXzero) zero-shot mean AUROC over the scored
    findings; ``mean_auroc_descriptions`` uses the knowledge card's descriptions.
    """
    main = results["main"]
    zero_shot, retrieval = main["zero_shot"], main["retrieval"]
    summary: dict[str, Any] = {
        "mean_auroc": zero_shot["names"]["mean_auroc"],
        "mean_auroc_descriptions": zero_shot["descriptions"]["mean_auroc"],
        "mean_auroc_random": zero_shot["random"]["mean_auroc"],
        "mean_auroc_label_prior": zero_shot["label_prior"]["mean_auroc"],
    }
    for k in (1, 5, 10):
        summary[f"report_to_image_recall@{k}"] = retrieval[f"report_to_image_recall@{k}"]
    summary["image_to_report_recall@10"] = retrieval["image_to_report_recall@10"]
    summary["random_recall@10"] = retrieval["random_recall@10"]
    summary["label_prior_recall@10"] = retrieval["label_prior_recall@10"]
    return summary


def _interval(entry: Mapping[str, Any]) -> str:
    return f"{fmt(entry['auroc'])} [{fmt(entry['low'])}, {fmt(entry['high'])}]"


def auroc_rows(zero_shot: Mapping[str, Any]) -> list[list[Any]]:
    """Rows of the per-finding table: finding, cases, names, descriptions, baselines."""
    rows = []
    for finding, names in zero_shot["names"]["per_finding"].items():
        descriptions = zero_shot["descriptions"]["per_finding"][finding]
        rows.append([finding, f"{names['positives']} / {names['negatives']}", _interval(names),
                     _interval(descriptions),
                     _interval(zero_shot["random"]["per_finding"][finding]),
                     zero_shot["label_prior"]["per_finding"][finding]["auroc"]])
    rows.append(["**mean**", "", zero_shot["names"]["mean_auroc"],
                 zero_shot["descriptions"]["mean_auroc"], zero_shot["random"]["mean_auroc"],
                 zero_shot["label_prior"]["mean_auroc"]])
    return rows


def markdown_report(results: Mapping[str, Any], summary: Mapping[str, Any],
                    config: Mapping[str, Any], timing: Mapping[str, Any]) -> str:
    """The run's ``report.md``: setup, zero-shot findings, retrieval, companions, figures."""
    main = results["main"]
    seconds = timing.get("training_seconds")
    lines = [f"# Radiology run: {config['model']}", "",
             f"Data: `{config['data'].get('root') or 'synthetic set (default)'}` "
             f"(layout {config['data'].get('layout')}); evaluated on the "
             f"{(config.get('evaluation') or {}).get('split', 'test')} split: "
             f"{main['studies']} studies. Training wall time: "
             f"{fmt(round(seconds, 1)) if seconds is not None else '—'} s. "
             f"Loss: {config['loss'].get('type')}.", "",
             "## Zero-shot findings (CheXzero: softmax over a positive and a negative prompt)",
             "",
             "AUROC per finding over studies labelled positive or negative (uncertain and "
             "unmentioned left out), bootstrap 95 % intervals in brackets. *names*: "
             "\"{finding}\" vs \"no {finding}\"; *descriptions*: the knowledge card's visual "
             "descriptions of presence vs absence. Baselines: random scores, and the label "
             "prior (every study scored by the finding's training prevalence — a constant, "
             "so 0.5).", ""]
    lines += markdown_table(["finding", "pos / neg", "names", "descriptions", "random",
                             "label prior"], auroc_rows(main["zero_shot"]))
    retrieval = main["retrieval"]
    lines += ["", "## Image <-> report retrieval", "",
              f"A hit is a study with the same finding set (positive or uncertain findings); "
              f"{retrieval['studies']} studies, {retrieval['finding_sets']} distinct sets. "
              "Random: the expected hit rate of a random ranking; label prior: every query "
              "ranks studies by how common their finding set is.", ""]
    rows = [[f"Recall@{k}", retrieval[f"report_to_image_recall@{k}"],
             retrieval[f"image_to_report_recall@{k}"], retrieval[f"random_recall@{k}"],
             retrieval[f"label_prior_recall@{k}"]] for k in (1, 5, 10)]
    lines += markdown_table(["", "report → image", "image → report", "random", "label prior"],
                            rows)
    if len(results) > 1:
        lines += ["", "## Companions", ""]
        rows = [[name, metric(r, "zero_shot", "names", "mean_auroc"),
                 metric(r, "zero_shot", "descriptions", "mean_auroc"),
                 metric(r, "retrieval", "report_to_image_recall@10")]
                for name, r in results.items()]
        lines += markdown_table(["model", "mean AUROC (names)", "mean AUROC (descriptions)",
                                 "report → image R@10"], rows)
    lines += ["", "## Headline", ""]
    lines += markdown_table(["metric", "value", "target"],
                            [[k, v, TARGETS.get(k)] for k, v in summary.items()])
    lines += ["", "## Figures", "", "- `curves.png`: training and validation loss, temperature",
              "- `roc_curves.png`: ROC curve per finding (names and descriptions)",
              "- `retrieval_example.png`: a held-out radiograph and its top reports "
              "(identifiers stripped)", ""]
    return "\n".join(lines)


def print_summary(summary: Mapping[str, Any], out: str,
                  bad: list[tuple[str, str]] | None = None) -> None:
    """The console summary: headline figures beside their targets."""
    console.print(summary_table(f"Radiology run {out}", summary, {}, TARGETS))
    print_bad_samples(bad or [])
