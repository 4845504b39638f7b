"""The run configuration of `python -m domains.pathology.train`: YAML + command line.

A run config is a YAML file under `configs/pathology/` (``kind: run``). The command line
overrides any key: the common ones have flags, the rest go through ``--set KEY=VALUE``
with dotted keys (``--set data.stain_scale=0``), values parsed as YAML. The merging is
:func:`core.registry.deep_merge`; the shared flags and their resolution are
:mod:`core.run_args`, as in every domain.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core import run_args
from core.resources import resource_dir
from domains.pathology.archives import LAYOUTS

DEFAULT_RUN = "pathology/train-default.yaml"
LAYOUT_NAMES = tuple(LAYOUTS)


def default_config_path() -> Path:
    """Path of the default run config."""
    return resource_dir("configs") / DEFAULT_RUN


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the training entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m domains.pathology.train",
        description="Train an H&E tile <-> caption model, evaluate tile and slide zero-shot "
        "tissue classification and caption <-> tile retrieval on the held-out sites, and "
        "write a run folder with weights, metrics, report and figures.")
    run_args.add_config_flag(parser, DEFAULT_RUN)
    parser.add_argument("--model", help="registry name of the model (path-tiny, path-small...)")
    parser.add_argument("--text-model", help="text encoder: minilm, a Hugging Face name (e.g. "
                        "a biomedical BERT) or a local folder")
    parser.add_argument("--unfreeze-top", type=int, help="train the top N text-encoder layers")
    parser.add_argument("--stain-normalisation", choices=("none", "macenko"),
                        help="Macenko-normalise every tile before the model (training and "
                        "inference)")
    run_args.add_common_flags(parser, layouts=LAYOUT_NAMES,
                              data_help="data root (default: the synthetic set)",
                              batch_help="tiles per mini-batch")
    parser.add_argument("--fast-dev-run", action="store_true",
                        help="one training and one validation batch per model (a smoke test)")
    run_args.add_set_flag(parser)
    return parser


def resolve_run_config(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the YAML run config with the command-line overrides.

    Args:
        args: Parsed command-line arguments.

    Returns:
        The run configuration as a plain dict.
    """
    stain = args.stain_normalisation
    flags: dict[str, Any] = {
        "model": args.model, **run_args.common_flag_values(args),
        "model_overrides.towers.text.model": args.text_model,
        "model_overrides.towers.text.unfreeze_top": args.unfreeze_top,
        "model_overrides.extra.stain_normalisation": None if stain in (None, "none")
        else stain,
        "trainer.fast_dev_run": True if args.fast_dev_run else None,
    }

    def finish(config: dict[str, Any]) -> dict[str, Any]:
        if stain == "none":  # an explicit "none" overrides a config that normalises
            config.setdefault("model_overrides", {}).setdefault("extra", {})[
                "stain_normalisation"] = None
        return config

    return run_args.resolve_run_config(args, default_config_path(), flags,
                                       model_changed=bool(args.model), finish=finish)
