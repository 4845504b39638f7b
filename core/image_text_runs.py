"""The run of an image <-> text domain (radiology, pathology): variants, training, evaluation CLI.

Radiology and pathology train the same thing on different data: one ``image`` tower,
one ``text`` tower, the run's loss (soft targets by default) and a ``clip`` companion
(plain InfoNCE) that shows what the soft targets add. What a domain says is only what it
trains on (its data module, its checks of the model config, its title); the rest is
here, once:

- :class:`Variant` and :func:`build_variants`: the main model and its companions;
- :func:`run_variants`: the variants of a run config (its loss and model overrides);
- :func:`train_configured_variant`: :func:`core.runs.train_variant` with the run
  config's trainer, seed, loss and optimiser;
- :func:`train_main`: the ``train`` entry point around :func:`core.runs.train_run`;
- :func:`evaluation_parser` and :func:`evaluate_run`: the ``evaluate`` entry point.

What this adds on top of :mod:`core.runs`: the image + text variant family and the
wiring of a run config into it, so that no domain writes it again.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from core import runs
from core.atomic import atomic_write_bytes
from core.checkpoint import load_run, variant_folder
from core.model import ContrastiveModel, ModelConfig
from core.model_input import input_size
from core.registry import get_model_config
from core.resources import load_yaml

COMPANIONS = ("clip",)


@dataclass
class Variant(runs.Variant):
    """One model trained in a run (see :class:`core.runs.Variant`).

    Attributes:
        loss: The loss it trains with (``None``: the run's).
    """

    loss: dict | None = None

    @property
    def image_size(self) -> int:
        """The side images are resized to for this model."""
        return input_size(self.config.extra)


def build_variants(model_name: str, companions: Sequence[str],
                   overrides: Mapping[str, Any] | None = None, *,
                   check: Callable[[ModelConfig], None] | None = None) -> list[Variant]:
    """The main model and the requested companions, with their configs.

    Args:
        model_name: Registry name of the main model.
        companions: Any of :data:`COMPANIONS`.
        overrides: Model-config overrides applied to every variant (e.g. the loss).
        check: The domain's checks of the main model's config (raises ``ValueError``).

    Returns:
        The variants, main first.

    Raises:
        ValueError: An unknown companion, a model without an ``image`` and a ``text``
            tower, no valid ``extra.input_size``, or what ``check`` refuses — before any
            training, not after it.
    """
    overrides = dict(overrides or {})
    main = runs.main_model_config(model_name, companions, COMPANIONS, overrides)
    if "image" not in main.towers or "text" not in main.towers:
        raise ValueError(f"model {model_name!r} needs an 'image' and a 'text' tower, has "
                         f"{sorted(main.towers)}")
    input_size(main.extra)
    if check is not None:
        check(main)
    variants = [Variant("main", main)]
    if "clip" in companions:
        config = get_model_config(model_name, **{**overrides, "loss": {"type": "clip"}})
        config.name = f"{model_name}-clip"
        variants.append(Variant("clip", config, loss={"type": "clip"}))
    return variants


def run_variants(config: Mapping[str, Any],
                 build: Callable[..., list[Variant]]) -> list[Variant]:
    """The run's variants (main model first), with the config's loss and model overrides.

    Args:
        config: The run configuration (``model``, ``companions``, ``loss``,
            ``model_overrides``).
        build: The domain's ``build_variants(model_name, companions, overrides)``.
    """
    overrides = {"loss": config["loss"], **(config.get("model_overrides") or {})}
    return build(config["model"], config.get("companions") or [], overrides)


#: The one mini-batch of an image <-> text run: the image tower reads ``image``, the text
#: tower ``caption``.
INPUT_MAP = {"batch": {"image": "image", "text": "caption"}}


def run_data_root(config: Mapping[str, Any], default: Callable[[], Path]) -> Path:
    """The run's data folder: ``data.root``, else ``default()`` (e.g. the synthetic set,
    generated once)."""
    root = config["data"].get("root")
    return Path(root) if root else Path(default())


def train_configured_variant(variant: Variant, config: Mapping[str, Any], out: Path,
                             datamodule: L.LightningDataModule, *, domain: str,
                             data_title: str, input_map: dict[str, dict[str, str]] | None = None,
                             ) -> tuple[Path, ContrastiveModel | None]:
    """Train one variant with the run config's settings (see :func:`core.runs.train_variant`).

    Args:
        variant: What to train (its own loss first, else the run's).
        config: The run configuration (``trainer``, ``seed``, ``loss``, ``optimizer``).
        out: The run folder.
        datamodule: The variant's training data.
        domain: The domain's name, saved with the weights.
        data_title: What the data are, for the progress rule ("H&E tiles + captions").
        input_map: Mini-batch name -> {tower: batch field} (default :data:`INPUT_MAP`).

    Returns:
        The variant's folder and the trained model (``None`` when already trained).
    """
    return runs.train_variant(
        variant, out, datamodule, trainer=config["trainer"], seed=config["seed"],
        loss=getattr(variant, "loss", None) or config["loss"], optimizer=config["optimizer"],
        input_map=input_map or INPUT_MAP, saved={"domain": domain, "run": config},
        title=f"{variant.config.name} on {data_title}")


def train_main(argv: list[str] | None, *, parser: argparse.ArgumentParser,
               resolve: Callable[[argparse.Namespace], dict[str, Any]], command: str,
               figures: Sequence[str], data_root: Callable[[dict[str, Any]], Path],
               variants: Callable[[dict[str, Any]], Sequence[Any]],
               train: Callable[[Any, dict[str, Any], Path, Path], tuple[Path, Any]],
               evaluate: Callable[..., Any]) -> Path:
    """A domain's ``train`` entry point: parse, resolve the run config, :func:`core.runs.train_run`.

    Args:
        argv: The command line (``None``: ``sys.argv``).
        parser: The domain's parser (see :mod:`core.run_args`).
        resolve: Its run-config resolution from the parsed arguments.
        command: The entry point, as the run folder records it.
        figures: The figures evaluation writes into the run folder.
        data_root: The run's data folder, from the config.
        variants: The run's variants, from the config.
        train: Trains one variant ``(variant, config, root, out)``.
        evaluate: The domain's ``evaluate_variants``.

    Returns:
        The run folder.
    """
    args = parser.parse_args(argv)
    config = resolve(args)
    return runs.train_run(config, resume=args.resume is not None, overwrite=args.overwrite,
                          command=command, figures=figures, data_root=data_root,
                          variants=variants, train=train, evaluate=evaluate)


def evaluation_parser(*, prog: str, description: str, set_example: str,
                      split_help: str = "the split to evaluate") -> argparse.ArgumentParser:
    """The ``evaluate`` parser of an image <-> text domain: a run folder, other data, a split.

    ``run``, ``--data``, ``--layout``, ``--set KEY=VALUE`` (loader options of ``--data``),
    ``--split`` and ``--out``; a domain adds its own flags before parsing.

    Args:
        prog: The entry point (``python -m domains.<d>.evaluate``).
        description: What it evaluates.
        set_example: A loader option, for the help of ``--set``.
        split_help: Help text of ``--split``.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("run", type=Path, help="run folder written by train")
    parser.add_argument("--data", type=Path, help="data root (default: the run's)")
    parser.add_argument("--layout", help="layout of --data (default: detected)")
    parser.add_argument("--set", dest="options", action="append", default=[],
                        metavar="KEY=VALUE", help="loader option of --data (YAML value), "
                        f"e.g. {set_example}")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"),
                        help=split_help)
    parser.add_argument("--out", type=Path,
                        help="where to write (default: RUN/eval/<data folder name>/)")
    return parser


def evaluate_run(args: argparse.Namespace, *, data_root: Callable[[dict[str, Any]], Path],
                 variants: Callable[[dict[str, Any]], Sequence[Any]],
                 evaluate: Callable[..., Any],
                 configure: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Evaluate a trained run folder on its data or on ``--data``, into its own folder.

    The run's saved config, with ``evaluation.split`` set and the data replaced by
    ``--data``/``--layout`` (loader options reset) and ``--set`` options; the folder
    (:func:`core.runs.evaluation_folder`) is marked with :data:`core.runs.EVALUATION_FILE`
    (run, data, layout, split); then every variant's saved weights are evaluated.

    Args:
        args: Parsed arguments of :func:`evaluation_parser`.
        data_root: The data folder, from the config.
        variants: The run's variants, from the config.
        evaluate: The domain's ``evaluate_variants(models, variants, config, root, out,
            run=...)``.
        configure: Applies the domain's own flags to the config (in place).

    Returns:
        What ``evaluate`` returns (the metrics payload).
    """
    config = load_yaml(args.run / "run.yaml")
    config.setdefault("evaluation", {})["split"] = args.split
    if configure is not None:
        configure(config)
    if args.data is not None:
        config["data"]["root"] = str(args.data)
        config["data"]["layout"] = args.layout
        config["data"]["options"] = {}
    for text in args.options:
        key, _, raw = text.partition("=")
        config["data"].setdefault("options", {})[key.strip()] = yaml.safe_load(raw)
    root = data_root(config)
    out = runs.evaluation_folder(args.run, root, args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / runs.EVALUATION_FILE, yaml.safe_dump(
        {"run": str(args.run.resolve()), "data": str(root.resolve()),
         "layout": config["data"].get("layout"), "split": args.split}).encode())
    chosen = variants(config)
    models = {v.name: load_run(variant_folder(args.run, v.name)) for v in chosen}
    return evaluate(models, chosen, config, root, out, run=args.run)
