"""`python -m domains.radiology.evaluate RUN [--data PATH --layout L]`: evaluate a radiology run.

Also called at the end of training, which writes the run's own ``metrics.json``,
``report.md`` and figures into the run folder. Run on its own — e.g. a model trained on
MIMIC-CXR evaluated on CheXpert — it writes into ``RUN/eval/<data-folder-name>/`` (or
``--out``) and never touches the training report. For every model of the run: zero-shot
AUROC per finding (names-only and description prompts, bootstrap intervals, random and
label-prior baselines) and image <-> report Recall@k on the held-out split
(:mod:`domains.radiology.evaluation`); figures: training curves, ROC curves per finding,
a retrieval example. Patient ids are never read here: studies carry opaque ids only.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.atomic import atomic_write_bytes
from core.cli import run_cli
from core.data import BadSampleLog, collect_bad_samples
from core.image_text_runs import evaluate_run, evaluation_parser
from core.model import ContrastiveModel
from core.plots import plt
from core.runs import write_training_curves
from core.zero_shot import PromptClassifier
from domains.radiology import cards
from domains.radiology.embed import EmbeddedStudies, embed_split
from domains.radiology.evaluation import (
    PROMPT_KINDS,
    auroc_table,
    retrieval_metrics,
    same_finding_set,
    scored_findings,
    zero_shot_probabilities,
)
from domains.radiology.report import headline, markdown_report, print_summary
from domains.radiology.train import BAD_SAMPLE_LOG, data_root, variants_for
from domains.radiology.transforms import finding_sets as sets_of
from domains.radiology.variants import Variant


def evaluate_model(model: ContrastiveModel, studies: EmbeddedStudies, train_prevalence:
                   np.ndarray | None, settings: dict[str, Any], seed: int = 0
                   ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Zero-shot findings and retrieval of one model on one embedded split.

    Args:
        model: The trained model.
        studies: The split, embedded by ``model``.
        train_prevalence: (F,) share of positive studies per finding, the label-prior
            scores (``None``: the split's own; a constant per finding, so its AUROC is 0.5
            whichever prevalence is used).
        settings: ``bootstrap`` resamples and ``min_cases``.
        seed: Seed of the bootstrap and of the random baseline.

    Returns:
        The metrics, and the (N, F) probabilities per prompt kind (for the ROC figure).
    """
    findings = cards.findings()
    labels = studies.labels
    scored = scored_findings(labels, findings, settings.get("min_cases", 5))
    resamples = int(settings.get("bootstrap", 1000))
    classifier = PromptClassifier(model)
    probabilities = {kind: zero_shot_probabilities(classifier, studies.images, findings,
                                                   kind).numpy() for kind in PROMPT_KINDS}
    prevalence = train_prevalence if train_prevalence is not None else \
        np.nan_to_num((labels == 1).mean(0))
    baselines = {"random": np.random.default_rng(seed).random(labels.shape),
                 "label_prior": np.broadcast_to(prevalence, labels.shape).copy()}
    zero_shot = {kind: auroc_table(scores, labels, findings, scored, resamples, seed)
                 for kind, scores in {**probabilities, **baselines}.items()}
    result = {"studies": len(studies.ids), "scored_findings": scored, "zero_shot": zero_shot,
              "retrieval": retrieval_metrics(studies.images, studies.reports, labels)}
    return result, probabilities


def _save_png(figure: Any, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def plot_roc_curves(probabilities: dict[str, np.ndarray], labels: np.ndarray,
                    scored: list[str], results: dict[str, Any], path: Path) -> None:
    """One panel per scored finding: ROC curves of names-only and description prompts."""
    from sklearn.metrics import roc_curve

    findings = cards.findings()
    columns = min(4, max(1, len(scored)))
    rows = max(1, -(-len(scored) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for axis in axes.flat[len(scored):]:
        axis.axis("off")
    for axis, finding in zip(axes.flat, scored, strict=False):
        column = findings.index(finding)
        keep = (labels[:, column] == 1) | (labels[:, column] == 0)
        for kind, colour in (("names", "tab:blue"), ("descriptions", "tab:orange")):
            fpr, tpr, _ = roc_curve(labels[keep, column] == 1, probabilities[kind][keep, column])
            value = results["zero_shot"][kind]["per_finding"][finding]["auroc"]
            axis.plot(fpr, tpr, color=colour, label=f"{kind} {value:.2f}")
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
        axis.set_title(finding, fontsize=9)
        axis.legend(fontsize=7, loc="lower right")
        axis.set_xlabel("false positive rate", fontsize=7)
        axis.set_ylabel("true positive rate", fontsize=7)
    _save_png(figure, path)


def plot_retrieval_example(studies: EmbeddedStudies, path: Path, top: int = 3) -> None:
    """A held-out radiograph with findings and its top reports (no ids, captions only)."""
    sets = same_finding_set(studies.labels, studies.labels)
    findings = cards.findings()
    abnormal = [i for i in range(len(studies.ids))
                if studies.labels[i, findings.index("No Finding")] != 1]
    query = abnormal[0] if abnormal else 0
    order = torch.argsort(studies.reports @ studies.images[query], descending=True)[:top]
    picture = studies.dataset.read_sample(query)["image"][0].numpy()  # (H, W) standardised
    picture = (picture - picture.min()) / max(float(np.ptp(picture)), 1e-6)
    figure, axes = plt.subplots(1, top + 1, figsize=(3.2 * (top + 1), 3.6))
    axes[0].imshow(picture, cmap="gray")
    present = [f for f, is_set in zip(findings, sets_of(studies.labels[query:query + 1])[0],
                                      strict=True) if is_set]
    axes[0].set_title("held-out radiograph:\n" + textwrap.fill(", ".join(present), 40),
                      fontsize=8)
    axes[0].axis("off")
    for rank, (axis, index) in enumerate(zip(axes[1:], order.tolist(), strict=False), 1):
        hit = bool(sets[query, index])
        text = textwrap.fill(studies.captions[index][:420], 38)
        axis.text(0.02, 0.98, text, va="top", ha="left", fontsize=6.5, family="monospace",
                  transform=axis.transAxes)
        axis.set_title(f"report #{rank} ({'same findings' if hit else 'other findings'})",
                       fontsize=8, color="tab:green" if hit else "tab:red")
        axis.set_xticks([])
        axis.set_yticks([])
    _save_png(figure, path)


def evaluate_variants(models: dict[str, ContrastiveModel], variants: list[Variant],
                      config: dict[str, Any], root: Path, out: Path,
                      training_seconds: float | None = None,
                      run: Path | None = None) -> dict[str, Any]:
    """Evaluate every model of a run and write metrics, report and figures.

    Args:
        models: Variant name -> trained model.
        variants: The run's variants.
        config: The run configuration.
        root: Data folder.
        out: Where metrics, report and figures go (the run folder at the end of training).
        training_seconds: Wall time of training, for the report.
        run: The run folder when ``out`` is another one (its curves and skipped studies).

    Returns:
        The metrics dict written to ``metrics.json``.
    """
    torch.manual_seed(config["seed"])
    data = config["data"]
    settings = config.get("evaluation") or {}
    results: dict[str, Any] = {}
    main_studies, main_probabilities = None, None
    for variant in variants:
        model = models[variant.name]
        studies = embed_split(model, root, settings.get("split", "test"), data.get("layout"),
                              data["batch_size"], data.get("options") or {})
        results[variant.name], probabilities = evaluate_model(model, studies, None, settings,
                                                              config["seed"])
        if variant.name == "main":
            main_studies, main_probabilities = studies, probabilities
    summary = headline(results)
    timing = {"training_seconds": training_seconds}
    bad = collect_bad_samples([], BadSampleLog((run or out) / "logs" / BAD_SAMPLE_LOG))
    bad = list(dict.fromkeys([*bad, *(main_studies.bad_samples if main_studies else [])]))
    payload = {"domain": "radiology", "summary": summary, "variants": results,
               "timing": timing, "bad_samples": bad}
    atomic_write_bytes(out / "metrics.json", json.dumps(payload, indent=2).encode())
    atomic_write_bytes(out / "report.md",
                       markdown_report(results, summary, config, timing).encode())
    write_training_curves(out, variants, run)
    if main_studies is not None and main_probabilities is not None:
        scored = results["main"]["scored_findings"]
        if scored:
            plot_roc_curves(main_probabilities, main_studies.labels, scored, results["main"],
                            out / "roc_curves.png")
        plot_retrieval_example(main_studies, out / "retrieval_example.png")
    print_summary(summary, str(out), bad)
    return payload


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Evaluate a run folder from the command line (into its own folder)."""
    parser = evaluation_parser(
        prog="python -m domains.radiology.evaluate",
        description="Evaluate a radiology run folder: zero-shot findings and image <-> "
        "report retrieval.", set_example="uncertain=ones",
        split_help="the split to evaluate (CheXpert: val = valid.csv, test = the "
        "CheXlocalize test.csv)")
    return evaluate_run(parser.parse_args(argv), data_root=data_root, variants=variants_for,
                        evaluate=evaluate_variants)


if __name__ == "__main__":
    run_cli(main)
