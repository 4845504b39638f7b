"""`python -m domains.radiology.train`: train a radiograph <-> report model, evaluate, write a run.

With no arguments: generate (or reuse) the synthetic chest-radiograph set, train
``cxr-tiny`` (a small ResNet on 96 px radiographs, MiniLM through the text bridge, soft
targets from the finding labels) on the CPU, evaluate zero-shot findings and retrieval on
the held-out split and write ``runs/cxr-tiny/`` (weights, config, metrics, report,
figures). ``--data`` trains on MIMIC-CXR, CheXpert or a study folder instead. The
training loop is :func:`core.runs.train_variant` (wired by
:mod:`core.image_text_runs`); this module says what radiology trains on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.cli import run_cli
from core.image_text_runs import (
    run_data_root,
    run_variants,
    train_configured_variant,
    train_main,
)
from core.model import ContrastiveModel
from domains.radiology.datamodule import StudyDataModule, default_root
from domains.radiology.run_config import build_parser, resolve_run_config
from domains.radiology.variants import Variant, build_variants

DOMAIN = "radiology"
BAD_SAMPLE_LOG = "bad_samples.jsonl"
#: The figures evaluation writes into the run folder (removed with it by --overwrite).
FIGURES = ("curves.png", "roc_curves.png", "retrieval_example.png")


def data_root(config: dict[str, Any]) -> Path:
    """The run's data folder (the synthetic set, generated once, when none is given)."""
    return run_data_root(config, default_root)


def datamodule_for(variant: Variant, config: dict[str, Any], root: Path,
                   out: Path | None = None) -> StudyDataModule:
    """The data a variant trains on.

    Args:
        variant: The variant.
        config: The run configuration.
        root: Data folder.
        out: The run folder (where worker processes log the studies they skip).
    """
    data = config["data"]
    return StudyDataModule(root, variant.config.extra, layout=data.get("layout"),
                           batch_size=data["batch_size"], num_workers=data["num_workers"],
                           caption_augment=data.get("caption_augment", 0.5),
                           uncertain=data.get("uncertain", 0.5), seed=config["seed"],
                           preload=bool(data.get("preload", False)),
                           options=data.get("options") or {},
                           bad_sample_log=out / "logs" / BAD_SAMPLE_LOG if out else None)


def train_variant(variant: Variant, config: dict[str, Any], root: Path,
                  out: Path) -> tuple[Path, ContrastiveModel | None]:
    """Train one variant on ``root`` into the run folder ``out`` (resuming if interrupted);
    see :func:`core.image_text_runs.train_configured_variant`."""
    return train_configured_variant(variant, config, out,
                                    datamodule_for(variant, config, root, out), domain=DOMAIN,
                                    data_title="radiographs + reports")


def variants_for(config: dict[str, Any]) -> list[Variant]:
    """The run's variants (main model first), with the config's loss and model overrides."""
    return run_variants(config, build_variants)


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """:func:`domains.radiology.evaluate.evaluate_variants`, imported when first needed."""
    from domains.radiology.evaluate import evaluate_variants

    return evaluate_variants(*args, **kwargs)


def main(argv: list[str] | None = None) -> Path:
    """Run the training entry point; return the run folder."""
    return train_main(argv, parser=build_parser(), resolve=resolve_run_config,
                      command="domains.radiology.train", figures=FIGURES, data_root=data_root,
                      variants=variants_for, train=train_variant, evaluate=evaluate)


if __name__ == "__main__":
    run_cli(main)
