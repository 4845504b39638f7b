"""`python -m domains.remote_sensing.evaluate RUN [--data PATH --layout L]`: evaluate a run.

Also called at the end of training, which writes the run's own ``metrics.json``,
``report.md`` and figures into the run folder. Run on its own, it writes them into
``RUN/eval/<archive-name>/`` (or ``--out``) and never touches the training report. It
embeds the held-out scenes with every model of the run (main and companions) and
computes the metrics. Scenes are opened here
(:class:`~domains.remote_sensing.embed.EvalData`), never through the training data module.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from core.atomic import atomic_write_bytes
from core.checkpoint import load_run, variant_folder
from core.cli import run_cli
from core.data import BadSampleLog, collect_bad_samples, labels_of
from core.model import ContrastiveModel
from core.plots import (
    GalleryItem,
    plot_confusion_matrix,
    plot_gallery,
)
from core.resources import load_yaml
from core.runs import EVALUATION_FILE, evaluation_folder, write_training_curves
from domains.remote_sensing import cards
from domains.remote_sensing.archives import open_dataset
from domains.remote_sensing.augment import SpeckleToLooks
from domains.remote_sensing.embed import EmbeddedScenes, EvalData, embed_available, embed_scenes
from domains.remote_sensing.evaluation import (
    SINGLE_LOOK_ENL,
    evaluate_model,
    held_out_queries,
    land_cover_queries,
)
from domains.remote_sensing.geo_evaluation import (
    Query,
    choose_fusion_weight,
    choose_place_baselines,
    choose_proximity_weight,
    crisis_queries,
)
from domains.remote_sensing.render import render_scene
from domains.remote_sensing.report import headline, markdown_report, plot_claims, print_summary
from domains.remote_sensing.scene_io import SceneError
from domains.remote_sensing.train import BAD_SAMPLE_LOG, variants_for
from domains.remote_sensing.variants import Variant

GALLERY_QUERIES = ["water", "trees", "snow and ice", "built area", "flooded area"]
#: Variants whose crisis rankings get the place baselines (distance re-ranking, bbox
#: filter): the main model and its CLOSP/GeoCLOSP counterpart, which the claims compare.
PLACE_BASELINE_VARIANTS = ("main", "geo")


def write_figures(out: Path, results: dict[str, Any], variants: list[Variant],
                  main_model: ContrastiveModel, main_scenes: dict[str, EmbeddedScenes],
                  data: EvalData, run: Path | None = None) -> None:
    """Training curves, zero-shot confusion matrices and a retrieval gallery as PNG."""
    write_training_curves(out, variants, run)
    classes = cards.land_cover_classes()
    for sensor, zero_shot in results["main"]["zero_shot"].items():
        plot_confusion_matrix(np.asarray(zero_shot["confusion"]), classes,
                              out / f"confusion_{sensor}.png",
                              f"zero-shot {sensor.upper()} (accuracy {zero_shot['accuracy']:.2f})")
    vocabulary = cards.label_vocabulary()
    scenes = list(main_scenes.values())
    items = torch.cat([s.features for s in scenes])
    owners = [(s, i) for s in scenes for i in range(len(s.ids))]
    rows = []
    with torch.no_grad():
        queries = main_model.encode("text", GALLERY_QUERIES).cpu()
    for query, text_feature in zip(GALLERY_QUERIES, queries, strict=True):
        top = torch.topk(items @ text_feature, k=min(5, len(owners))).indices.tolist()
        hits = []
        for index in top:
            embedded, row = owners[index]
            sample = data.dataset(embedded.sensor, "test")[int(embedded.dataset_index[row])]
            bands = data.bands[embedded.sensor]
            picture = render_scene(sample["image"], embedded.sensor, bands)
            relevant = bool(embedded.labels[row, vocabulary.index(query)])
            hits.append(GalleryItem(picture, f"{embedded.sensor}: {sample['caption']}", relevant))
        rows.append((query, hits))
    plot_gallery(rows, out / "gallery.png")


def eval_data(variant: Variant, config: dict[str, Any], root: Path) -> EvalData:
    """The held-out scenes of a variant: its bands, its input size, the run's archive."""
    data = config["data"]
    return EvalData(root, data["layout"], variant.bands, variant.image_size,
                    data["batch_size"], data["num_workers"], data.get("preload"))


def archive_looks(layout: str) -> float:
    """The equivalent number of looks of an archive's S1 scenes (synthetic: its card's)."""
    if layout == "synthetic":
        return float(cards.card("synthetic")["s1_equivalent_number_of_looks"])
    return float(cards.card("sentinel1")["equivalent_number_of_looks"])


def single_look_scenes(model: ContrastiveModel, data: EvalData, seed: int
                       ) -> EmbeddedScenes | None:
    """The S1 test scenes brought to single-look speckle (ENL 1), embedded; None if none.

    Speckle is multiplied into the linear intensity before normalisation, seeded by the
    run seed and each scene's id (:class:`~domains.remote_sensing.augment.SpeckleToLooks`),
    so every model of a run, and every evaluation, sees the same degraded scenes.
    """
    degrade = SpeckleToLooks(SINGLE_LOOK_ENL, archive_looks(data.layout), seed=seed)
    degraded = dataclasses.replace(data, pre={**data.pre, "s1": degrade})
    try:
        return embed_scenes(model, degraded, "s1")
    except SceneError:
        return None


def validation_choices(model: ContrastiveModel, data: EvalData, sensors: list[str],
                       crisis: list[Query], place_baselines: bool) -> dict[str, float]:
    """Settings chosen on the validation split (empty without crisis queries or val scenes).

    GeoCLOSP: the place weight of place queries and the fusion weight of text-only
    queries. With ``place_baselines``: the distance weight and bbox half-size of the
    baselines that use the query's place with the model's text ranking.
    """
    geo = "location" in model.towers
    if not crisis or not (geo or place_baselines):
        return {}
    try:
        val = list(embed_available(model, data, sensors, split="val").values())
    except SceneError:
        return {}
    choices: dict[str, float] = {}
    if geo:
        choices["proximity_weight"] = choose_proximity_weight(model, val, crisis)
        choices["fusion_weight"] = choose_fusion_weight(
            model, val, land_cover_queries(*val), [tag for tag, _ in crisis])
    if place_baselines:
        choices.update(choose_place_baselines(model, val, crisis))
    return choices


def training_labels(data: EvalData, sensors: list[str]) -> torch.Tensor | None:
    """(M, 12) labels of the archive's training split (from its tables, no image read).

    The label-prior baselines rank scenes by these labels' frequencies. ``None`` when the
    archive has no training split or its table carries no labels.
    """
    rows = []
    for sensor in sensors:
        try:
            dataset = open_dataset(data.root, data.layout, sensor, "train", data.bands[sensor],
                                   preload=False)
        except (SceneError, FileNotFoundError, ValueError):
            continue
        if "labels" in dataset.metadata.columns:
            rows += [dataset.label_vector(labels_of(v)) for v in dataset.metadata["labels"]]
    return torch.stack(rows) if rows else None


def evaluate_variants(models: dict[str, ContrastiveModel], variants: list[Variant],
                      config: dict[str, Any], root: Path, out: Path,
                      training_seconds: float | None = None,
                      run: Path | None = None) -> dict[str, Any]:
    """Evaluate every model of a run and write metrics, report and figures.

    Args:
        models: Variant name -> trained model.
        variants: The run's variants (sensors and bands of each).
        config: The run configuration.
        root: Archive folder.
        out: Where metrics, report and figures go (the run folder at the end of training).
        training_seconds: Wall time of training, for the report.
        run: The run folder when ``out`` is another one (its training curves and
            skipped training scenes are read from there).

    Returns:
        The metrics dict written to ``metrics.json``.
    """
    torch.manual_seed(config["seed"])
    results: dict[str, Any] = {}
    main_scenes: dict[str, EmbeddedScenes] = {}
    main_data: EvalData | None = None
    queries = None
    crisis = crisis_queries(config["data"]["layout"])
    train_labels = None
    for variant in variants:  # main first: its archive (both sensors) defines the queries
        model = models[variant.name]
        data = eval_data(variant, config, root)
        scenes = embed_available(model, data, variant.sensors)
        if queries is None:
            queries = land_cover_queries(*scenes.values())
            train_labels = training_labels(data, variant.sensors)
        choices = validation_choices(model, data, variant.sensors, crisis,
                                     variant.name in PLACE_BASELINE_VARIANTS)
        single_look = single_look_scenes(model, data, config["seed"]) \
            if "s1" in scenes else None
        results[variant.name] = evaluate_model(
            model, scenes, queries, crisis, choices, single_look,
            held_out=held_out_queries(queries[1]), train_labels=train_labels)
        if variant.name == "main":
            main_scenes, main_data = scenes, data
    summary = headline(results, main_is_geo="location" in models["main"].towers)
    timing = {"training_seconds": training_seconds}
    bad = collect_bad_samples([], BadSampleLog((run or out) / "logs" / BAD_SAMPLE_LOG))
    bad = list(dict.fromkeys([*bad, *(main_data.bad_samples() if main_data else [])]))
    payload = {"summary": summary, "variants": results, "timing": timing,
               "bad_samples": bad}
    atomic_write_bytes(out / "metrics.json", json.dumps(payload, indent=2).encode())
    atomic_write_bytes(out / "report.md",
                       markdown_report(results, summary, config, timing).encode())
    write_figures(out, results, variants, models["main"], main_scenes, main_data, run)
    plot_claims(summary["claims"], out / "claims.png")
    print_summary(summary, str(out), bad)
    return payload


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Evaluate a run folder from the command line (into its own folder)."""
    parser = argparse.ArgumentParser(prog="python -m domains.remote_sensing.evaluate",
                                     description="Evaluate a CLOSP/GeoCLOSP run folder.")
    parser.add_argument("run", type=Path, help="run folder written by train")
    parser.add_argument("--data", type=Path, help="archive root (default: the run's)")
    parser.add_argument("--layout", help="layout of --data (default: the run's)")
    parser.add_argument("--out", type=Path,
                        help="where to write (default: RUN/eval/<archive folder name>/)")
    args = parser.parse_args(argv)
    config = load_yaml(args.run / "run.yaml")
    if args.data is not None:
        config["data"]["root"] = str(args.data)
        config["data"]["layout"] = args.layout or config["data"]["layout"]
    root = config["data"].get("root")
    if root is None:
        from domains.remote_sensing.synthetic import default_archive

        root = default_archive()
    out = evaluation_folder(args.run, Path(root), args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / EVALUATION_FILE, yaml.safe_dump(
        {"run": str(args.run.resolve()), "archive": str(Path(root).resolve()),
         "layout": config["data"]["layout"]}).encode())
    variants = variants_for(config)
    models = {v.name: load_run(variant_folder(args.run, v.name)) for v in variants}
    return evaluate_variants(models, variants, config, Path(root), out, run=args.run)


if __name__ == "__main__":
    run_cli(main)
