"""`python -m domains.pathology.train`: train an H&E tile <-> caption model, evaluate, write a run.

With no arguments: generate (or reuse) the synthetic H&E set, train ``path-tiny`` (a
half-width ResNet on 64 px RGB tiles, MiniLM through the text bridge, soft targets from
the tile classes) on the CPU, evaluate tile and slide zero-shot tissue classification and
caption <-> tile retrieval on the held-out sites and write ``runs/path-tiny/`` (weights,
config, metrics, report, figures). ``--data`` trains on NCT-CRC-HE-100K, a tiles +
captions CSV or another synthetic set instead. The training loop is
:func:`core.runs.train_variant` (wired by
:mod:`core.image_text_runs`); this module says what pathology trains on.
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
from domains.pathology.datamodule import TileDataModule, default_root
from domains.pathology.run_config import build_parser, resolve_run_config
from domains.pathology.variants import Variant, build_variants

DOMAIN = "pathology"
BAD_SAMPLE_LOG = "bad_samples.jsonl"
#: The figures evaluation writes into the run folder (removed with it by --overwrite).
FIGURES = ("curves.png", "confusion_matrix.png", "slide_heatmap.png")


def data_root(config: dict[str, Any]) -> Path:
    """The run's data folder (the synthetic set, generated once, when none is given)."""
    return run_data_root(config, default_root)


def datamodule_for(variant: Variant, config: dict[str, Any], root: Path,
                   out: Path | None = None) -> TileDataModule:
    """The data a variant trains on.

    Args:
        variant: The variant.
        config: The run configuration.
        root: Data folder.
        out: The run folder (where worker processes log the tiles they skip).
    """
    data = config["data"]
    return TileDataModule(root, variant.config.extra, layout=data.get("layout"),
                          batch_size=data["batch_size"], num_workers=data["num_workers"],
                          augment=bool(data.get("augment", True)),
                          stain_scale=float(data.get("stain_scale", 0.05)),
                          stain_shift=float(data.get("stain_shift", 0.01)),
                          seed=config["seed"], options=data.get("options") or {},
                          bad_sample_log=out / "logs" / BAD_SAMPLE_LOG if out else None)


def train_variant(variant: Variant, config: dict[str, Any], root: Path,
                  out: Path) -> tuple[Path, ContrastiveModel | None]:
    """Train one variant on ``root`` into the run folder ``out`` (resuming if interrupted);
    see :func:`core.image_text_runs.train_configured_variant`."""
    return train_configured_variant(variant, config, out,
                                    datamodule_for(variant, config, root, out), domain=DOMAIN,
                                    data_title="H&E tiles + captions")


def variants_for(config: dict[str, Any]) -> list[Variant]:
    """The run's variants (main model first), with the config's loss and model overrides."""
    return run_variants(config, build_variants)


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """:func:`domains.pathology.evaluate.evaluate_variants`, imported when first needed."""
    from domains.pathology.evaluate import evaluate_variants

    return evaluate_variants(*args, **kwargs)


def main(argv: list[str] | None = None) -> Path:
    """Run the training entry point; return the run folder."""
    return train_main(argv, parser=build_parser(), resolve=resolve_run_config,
                      command="domains.pathology.train", figures=FIGURES, data_root=data_root,
                      variants=variants_for, train=train_variant, evaluate=evaluate)


if __name__ == "__main__":
    run_cli(main)
