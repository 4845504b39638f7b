"""`python -m domains.remote_sensing.train`: train CLOSP / GeoCLOSP, evaluate, write a run folder.

With no arguments: generate (or reuse) the default synthetic archive, train CLOSP-tiny
and its comparison companions (RGB-only, S1 alone, GeoCLOSP) on the CPU, evaluate them
on the held-out split and write ``runs/closp-tiny/`` (weights, config, metrics, report,
figures). ``--help`` lists every option. The training loop of each variant is
:func:`core.runs.train_variant`; this module says what CLOSP trains on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core import run_args, seeds
from core.cli import run_cli
from core.data import labels_of
from core.losses import with_label_frequencies
from core.model import ContrastiveModel
from core.runs import (
    quiet_lightning,  # noqa: F401  (tests call train.quiet_lightning)
    train_run,
)
from core.runs import train_variant as train_model
from domains.remote_sensing.datamodule import CLOSPDataModule
from domains.remote_sensing.run_config import build_parser, resolve_run_config
from domains.remote_sensing.variants import Variant, build_variants

BAD_SAMPLE_LOG = "bad_samples.jsonl"
#: Added to the companions of a ``--seeds`` run (unless it has none): soft targets beside
#: InfoNCE on the crisis queries. Not in the single-seed default: the demo must stay
#: within 10 minutes (see configs/remote_sensing/train-default.yaml).
SEEDS_COMPANION = "infonce"
#: The figures evaluation writes into the run folder (removed with it by --overwrite).
FIGURES = ("curves.png", "confusion_s2.png", "confusion_s1.png", "gallery.png")


def datamodule_for(variant: Variant, config: dict[str, Any], root: Path,
                   out: Path | None = None) -> CLOSPDataModule:
    """The data a variant trains on (its sensors and bands).

    Args:
        variant: The variant.
        config: The run configuration.
        root: Archive folder.
        out: The run folder (where worker processes log the scenes they skip).
    """
    data = config["data"]
    bands = variant.bands
    return CLOSPDataModule(root, layout=data["layout"], sensors=variant.sensors,
                           s2_bands=bands["s2"], s1_bands=bands["s1"],
                           batch_size=data["batch_size"], num_workers=data["num_workers"],
                           seed=config["seed"], caption_augment=data.get("caption_augment", 0.5),
                           image_size=variant.image_size, preload=data.get("preload"),
                           speckle_augment=data.get("speckle_augment"),
                           cloud_augment=data.get("cloud_augment"),
                           bad_sample_log=out / "logs" / BAD_SAMPLE_LOG if out else None)


def input_map(model_towers: Any, sensors: list[str]) -> dict[str, dict[str, str]]:
    """Which batch field feeds which tower, per sensor mini-batch."""
    fields = {"text": "caption", "location": "coords"}
    return {s: {s: "image", **{t: f for t, f in fields.items() if t in model_towers}}
            for s in sensors}


def training_labels(datamodule: CLOSPDataModule, sensors: list[str]) -> torch.Tensor:
    """(N, 12) multi-hot labels of every training scene of ``sensors``, from the archive
    tables (no image is read); (0, 12) when a table lists no labels."""
    rows = []
    for sensor in sensors:
        dataset = datamodule.dataset(sensor, "train")
        listed = [labels_of(v) for v in dataset.metadata.get("labels", [])]
        if not listed or not all(listed):
            return torch.zeros(0, len(dataset.vocabulary))
        rows += [dataset.label_vector(labels) for labels in listed]
    return torch.stack(rows)


def loss_spec(variant: Variant, datamodule: CLOSPDataModule) -> dict[str, Any]:
    """The variant's loss spec (its config's: the run's, ``clip`` for ``infonce``); IDF
    label weighting gets the training split's label frequencies (per batch when the archive
    tables list no labels)."""
    spec = dict(variant.config.loss)
    if spec.get("label_weighting", "none") != "idf":
        return spec
    labels = training_labels(datamodule, variant.sensors)
    return with_label_frequencies(spec, labels) if len(labels) else spec


def train_variant(variant: Variant, config: dict[str, Any], root: Path,
                  out: Path) -> tuple[Path, ContrastiveModel | None]:
    """Train one variant (resuming from its last checkpoint if any) and save its folder.

    Args:
        variant: What to train.
        config: The run configuration.
        root: Archive folder.
        out: The run folder.

    Returns:
        The variant's folder (weights + config) and the trained model (``None`` when the
        variant was already trained by an earlier, resumed, invocation).
    """
    datamodule = datamodule_for(variant, config, root, out)
    level = datamodule.dataset("s2", "train").level if "s2" in variant.sensors else None
    return train_model(
        variant, out, datamodule, trainer=config["trainer"],
        seed=config["seed"], loss=loss_spec(variant, datamodule),
        optimizer=config["optimizer"],
        input_map=input_map(variant.config.towers, variant.sensors),
        saved={"sensors": variant.sensors, "s2_bands": variant.s2_bands, "s2_level": level,
               "run": config},
        title=f"{variant.config.name} on {'+'.join(variant.sensors)}")


def data_root(config: dict[str, Any]) -> Path:
    """The run's archive folder (the default synthetic archive, generated once, if none)."""
    root = config["data"].get("root")
    if root:
        return Path(root)
    from domains.remote_sensing.synthetic import default_archive

    return default_archive()


def variants_for(config: dict[str, Any]) -> list[Variant]:
    """The run's variants (main model first), with the config's loss and ``model_overrides``
    (merged into every variant's model config, e.g. the text bridge:
    ``{towers: {text: {embed_dim: 384, proj_hidden: 512}}}``)."""
    overrides = {"loss": config["loss"], **(config.get("model_overrides") or {})}
    return build_variants(config["model"], config["companions"], overrides=overrides)


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """:func:`domains.remote_sensing.evaluate.evaluate_variants`, imported when first needed."""
    from domains.remote_sensing.evaluate import evaluate_variants

    return evaluate_variants(*args, **kwargs)


def main(argv: list[str] | None = None) -> Path:
    """Run the training entry point; return the run folder (with ``--seeds``, the folder
    holding ``seed-<s>/`` and ``seeds.json``; its runs add the ``infonce`` companion)."""
    args = build_parser().parse_args(argv)
    config = resolve_run_config(args)

    def run(config: dict[str, Any]) -> Path:
        return train_run(config, resume=args.resume is not None, overwrite=args.overwrite,
                         command="domains.remote_sensing.train", figures=FIGURES,
                         data_root=data_root, variants=variants_for, train=train_variant,
                         evaluate=evaluate)

    if not args.seeds:
        return run(config)
    config = run_args.seeds_config(args, config)
    if config["companions"] and SEEDS_COMPANION not in config["companions"]:
        config["companions"] = [*config["companions"], SEEDS_COMPANION]
    summary = seeds.run_seeds(config, args.seeds, run, overwrite=args.overwrite,
                              title=f"{config['model']} seeds")
    seeds.print_verdicts(summary)
    return Path(config["out"])


if __name__ == "__main__":
    run_cli(main)
