"""Text bridge and soft-target options of CLOSP, measured on the validation split.

Trains the main CLOSP model (no companions) of the default run on the default synthetic
archive once per option, and the S1 tower alone beside it, then embeds the VALIDATION
scenes and prints, per option:

- S2 and S1 zero-shot dominant-class accuracy (beside the majority class and chance);
- text -> scene nDCG@10 over the mixed S1 + S2 archive (land-cover queries, the run's own
  label-set captions) and over S1 alone (the unified-vs-S1-alone comparison);
- crisis nDCG@10 (one query per crisis tag over both sensors, as the run's report);
- training time of the model (seconds, from its ``trained.json``).

Options (``--bridges``): ``none`` (MiniLM frozen, no projection: every CLOSP config before
this measurement), ``mlp`` (frozen MiniLM, cached, with a trainable two-layer MLP
projection 384 -> ``--proj-hidden`` -> 384), ``mlp_top1`` (the same with MiniLM's top
layer trained; no text cache). Losses (``--losses``): ``plain`` (label-cosine soft
targets), ``idf`` (IDF-weighted label cosine, frequencies of the training split), ``mix``
(plain soft targets mixed half and half with the identity), ``infonce`` (the ``clip``
loss). S1-alone models are trained for the plain loss only (``--s1-alone``).

Every model is trained into its own folder under ``--work`` and skipped when already
there, so an interrupted benchmark continues; results go to ``--json`` (rewritten
atomically after each model)::

    OMP_NUM_THREADS=1 python benchmarks/rs_text_bridge.py --bridges none mlp \
        --losses plain idf --s1-alone --epochs 2

(the figures in docs/core.md "Remote sensing defaults, measured"; they were run as
separate processes per model, ``--only-s1-alone`` for the S1 towers alone, each with its
own ``--json``, on a shared machine).

One seed: differences of a point or two are within seed noise (see ``--seeds`` of the
training command for spread).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from core.atomic import atomic_write_bytes
from core.checkpoint import load_run
from core.data import labels_of
from core.metrics import ndcg_at_k
from core.resources import load_yaml
from core.runs import DONE_FILE, quiet_lightning
from domains.remote_sensing import train
from domains.remote_sensing.embed import EmbeddedScenes, EvalData, embed_available
from domains.remote_sensing.evaluation import (
    crisis_queries,
    crisis_retrieval,
    land_cover_queries,
    majority_accuracy,
    text_to_image,
    zero_shot_land_cover,
)
from domains.remote_sensing.run_config import default_config_path
from domains.remote_sensing.variants import build_variants

BRIDGES: dict[str, dict[str, Any]] = {
    "none": {"embed_dim": None, "proj_hidden": None, "unfreeze_top": 0},
    "mlp": {"embed_dim": 384, "proj_hidden": 512, "unfreeze_top": 0},
    "mlp_top1": {"embed_dim": 384, "proj_hidden": 512, "unfreeze_top": 1},
}
LOSSES: dict[str, dict[str, Any]] = {
    "plain": {"type": "soft_target", "label_weighting": "none", "hard_mix": 0.0},
    "idf": {"type": "soft_target", "label_weighting": "idf", "hard_mix": 0.0},
    "mix": {"type": "soft_target", "label_weighting": "none", "hard_mix": 0.5},
    "infonce": {"type": "clip"},
}


def random_ndcg(relevance: torch.Tensor, k: int = 10, draws: int = 20) -> float:
    """Expected nDCG@k of a random ranking (mean over seeded random scores)."""
    generator = torch.Generator().manual_seed(0)
    values = [ndcg_at_k(torch.rand(relevance.shape, generator=generator), relevance, k)
              for _ in range(draws)]
    return float(sum(values) / len(values))


def val_queries(evaldata: EvalData) -> tuple[list[str], torch.Tensor]:
    """The land-cover queries of the validation split (label sets of both sensors' scenes,
    from the archive tables), the same for every model whatever sensors it reads."""
    tables = []
    for sensor in ("s2", "s1"):
        dataset = evaldata.dataset(sensor, "val")
        rows = [dataset.label_vector(labels_of(v)) for v in dataset.metadata["labels"]]
        tables.append(SimpleNamespace(labels=torch.stack(rows)))
    return land_cover_queries(*tables)


def val_figures(model: Any, variant: Any, config: dict[str, Any],
                root: Path) -> dict[str, Any]:
    """Validation figures of one trained model."""
    data = config["data"]
    evaldata = EvalData(root, data["layout"], variant.bands, variant.image_size,
                        data["batch_size"], data["num_workers"], data.get("preload"))
    model.eval()
    scenes: dict[str, EmbeddedScenes] = embed_available(model, evaldata, variant.sensors,
                                                        split="val")
    texts, query_labels = val_queries(evaldata)
    figures: dict[str, Any] = {}
    with torch.no_grad():
        query_features = model.encode("text", texts).cpu()
        for sensor, embedded in scenes.items():
            figures[f"{sensor}_zero_shot"] = zero_shot_land_cover(model, embedded)["accuracy"]
            figures[f"{sensor}_majority"] = majority_accuracy(embedded.dominant)
            figures[f"{sensor}_ndcg@10"] = text_to_image(
                query_features, query_labels, embedded.features, embedded.labels)["ndcg@10"]
        if len(scenes) > 1:
            items = torch.cat([s.features for s in scenes.values()])
            labels = torch.cat([s.labels for s in scenes.values()])
            figures["mixed_ndcg@10"] = text_to_image(query_features, query_labels, items,
                                                     labels)["ndcg@10"]
            from core.metrics import label_overlap_relevance

            figures["mixed_ndcg@10_random"] = random_ndcg(
                label_overlap_relevance(query_labels, labels))
            crisis = crisis_queries(data["layout"])
            if crisis:
                result = crisis_retrieval(model, list(scenes.values()), crisis)
                figures["crisis_ndcg@10"] = result["ndcg@10"]
                figures["crisis_per_query"] = {k: v["ndcg@10"]
                                               for k, v in result["per_query"].items()}
    return figures


def run_one(key: str, bridge: str, loss: str, variant_name: str, args: argparse.Namespace,
            base: dict[str, Any], root: Path) -> dict[str, Any]:
    """Train (or reload) one model and return its validation figures."""
    config = copy.deepcopy(base)
    config["loss"] = dict(LOSSES[loss])
    config["companions"] = ["s1_alone"] if variant_name == "s1_alone" else []
    overrides = {"loss": config["loss"], "towers": {"text": dict(BRIDGES[bridge])}}
    if bridge != "none":
        overrides["towers"]["text"]["proj_hidden"] = args.proj_hidden
    variants = build_variants(config["model"], config["companions"], overrides=overrides)
    variant = next(v for v in variants if v.name == variant_name)
    variant.name = "main"  # each model has its own run folder
    out = args.work / key.replace("/", "-")
    out.mkdir(parents=True, exist_ok=True)
    folder, model = train.train_variant(variant, config, root, out)
    model = model if model is not None else load_run(folder)
    trained = load_yaml(folder / DONE_FILE)
    started = time.perf_counter()
    figures = val_figures(model, variant, config, root)
    figures["train_seconds"] = trained["seconds"]
    figures["eval_seconds"] = round(time.perf_counter() - started, 1)
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return (and write) every option's validation figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bridges", nargs="+", default=["none", "mlp"], choices=list(BRIDGES))
    parser.add_argument("--losses", nargs="+", default=["plain"], choices=list(LOSSES))
    parser.add_argument("--s1-alone", action="store_true",
                        help="also train the S1 tower alone per bridge (plain loss)")
    parser.add_argument("--only-s1-alone", action="store_true",
                        help="train only the S1 towers alone (plain loss), no main model")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--proj-hidden", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/rs_text_bridge"))
    parser.add_argument("--json", type=Path, default=Path("runs/benchmarks/rs_text_bridge.json"))
    args = parser.parse_args(argv)
    quiet_lightning()
    torch.set_float32_matmul_precision("high")
    base = load_yaml(default_config_path())
    base["trainer"]["max_epochs"] = args.epochs
    base["seed"] = args.seed
    root = train.data_root(base)
    results: dict[str, Any] = (json.loads(args.json.read_text()) if args.json.is_file()
                               else {})
    jobs = []
    for bridge in args.bridges:  # per bridge: the main model(s), then S1 alone beside them
        jobs += [] if args.only_s1_alone else [(bridge, loss, "main") for loss in args.losses]
        jobs += [(bridge, "plain", "s1_alone")] if args.s1_alone or args.only_s1_alone else []
    for bridge, loss, variant_name in jobs:
        key = f"e{args.epochs}-s{args.seed}/{bridge}/{loss}/{variant_name}"
        if key in results:
            print(key, "(done)", json.dumps(results[key]))
            continue
        figures = run_one(key, bridge, loss, variant_name, args, base, root)
        results[key] = figures
        print(key, json.dumps(figures), flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(args.json, json.dumps(results, indent=2).encode())
    print_table(results)
    return results


def print_table(results: dict[str, Any]) -> None:
    """The figures as one markdown table (one row per model)."""
    columns = ["s2_zero_shot", "s1_zero_shot", "mixed_ndcg@10", "s1_ndcg@10",
               "crisis_ndcg@10", "train_seconds"]
    print("| model | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for key, figures in results.items():
        cells = [figures.get(c) for c in columns]
        print(f"| {key} | " + " | ".join("—" if c is None else f"{c:.3f}" if isinstance(
            c, float) else str(c) for c in cells) + " |")
    first = next(iter(results.values()), {})
    print(f"baselines: S2 majority {first.get('s2_majority')}, S1 majority "
          f"{first.get('s1_majority')}, chance {1 / 9:.3f}, random mixed nDCG@10 "
          f"{first.get('mixed_ndcg@10_random')}")


if __name__ == "__main__":
    main()
