"""Which zero-shot prompts should be the default? Measured on a trained run's validation split.

Loads a remote-sensing run folder (``python -m domains.remote_sensing.train``), embeds
each sensor's validation scenes once, and prints the dominant-class accuracy of every
prompt option over the 9 Dynamic World classes beside the majority-class and chance
accuracy of the same scenes:

* templates: ``plain`` (``"{}"``: the class name alone, as a label-list caption names it),
  ``candidates`` (the captions card's ``zero_shot_template_candidates``: "{}" and three
  "a satellite image of {}."-like ones), ``sentences`` (the card's ``sentence_templates``,
  the templates of the training sentences), ``candidates+sentences``;
* synonyms: ``names`` (the class name only) or ``+synonyms`` (every training name of the
  class from the card's ``class_names``);
* ``held_out``: the held-out phrasings (never in training), for reference.

The option chosen becomes :func:`~domains.remote_sensing.captions.default_zero_shot`
(the captions card's ``zero_shot_templates`` / ``zero_shot_synonyms``); docs/zero_shot.md
records the figures.

    OMP_NUM_THREADS=1 python benchmarks/rs_zero_shot_prompts.py /tmp/A_run
    OMP_NUM_THREADS=1 python benchmarks/rs_zero_shot_prompts.py RUN --split test --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from core import metrics
from core.zero_shot import build_zero_shot_classifier
from domains.remote_sensing import cards
from domains.remote_sensing.captions import held_out_zero_shot, training_card, training_names
from domains.remote_sensing.embed import EmbeddedScenes, EvalData, embed_available
from domains.remote_sensing.evaluation import majority_accuracy
from domains.remote_sensing.run_model import SceneRun


def prompt_options() -> dict[str, tuple[list[str], list[str], dict[str, list[str]]]]:
    """Option name -> (classes, templates, synonyms), every option over the 9 classes."""
    card, classes = training_card(), cards.land_cover_classes()
    names = training_names()
    synonyms = {c: [n for n in names[c] if n != c] for c in classes}
    template_sets = {
        "plain": ["{}"],
        "candidates": list(card["zero_shot_template_candidates"]),
        "sentences": list(card["sentence_templates"]),
        "candidates+sentences": list(dict.fromkeys([*card["zero_shot_template_candidates"],
                                                    *card["sentence_templates"]])),
    }
    options = {}
    for label, templates in template_sets.items():
        options[f"{label} / names"] = (classes, templates, {})
        options[f"{label} / +synonyms"] = (classes, templates, synonyms)
    options["held_out (reference)"] = held_out_zero_shot()
    return options


def accuracy(run: SceneRun, scenes: EmbeddedScenes,
             option: tuple[list[str], list[str], dict[str, list[str]]]) -> float:
    """Dominant-class accuracy of one prompt option on embedded scenes."""
    classes, templates, synonyms = option
    classifier = build_zero_shot_classifier(run.model, classes, templates, synonyms).cpu()
    scores = scenes.features @ classifier  # (N, 9)
    keep = scenes.dominant >= 0
    return metrics.accuracy(scores[keep], scenes.dominant[keep])


def measure(run_folder: Path, split: str = "val", variant: str = "main",
            batch_size: int = 64) -> dict[str, Any]:
    """Accuracy per prompt option and sensor on one split, with majority and chance.

    Args:
        run_folder: The run folder.
        split: ``val`` (choosing) or ``test`` (reporting).
        variant: ``main`` or a companion.
        batch_size: Scenes per forward pass.

    Returns:
        ``{"split", "n": {sensor: n}, "majority": {...}, "chance": float,
        "accuracy": {option: {sensor: accuracy}}}``.
    """
    config = yaml.safe_load((run_folder / "run.yaml").read_text())  # YAML (or JSON)
    root = config["data"].get("root")
    if root is None:
        from domains.remote_sensing.synthetic import default_archive

        root = default_archive()
    run = SceneRun.load(run_folder, variant)
    data = EvalData(Path(root), config["data"]["layout"], run.bands, run.image_size,
                    batch_size)
    with torch.no_grad():
        scenes = embed_available(run.model, data, run.sensors, split=split)
        table = {name: {sensor: accuracy(run, embedded, option)
                        for sensor, embedded in scenes.items()}
                 for name, option in prompt_options().items()}
    return {"split": split, "n": {s: int((e.dominant >= 0).sum()) for s, e in scenes.items()},
            "majority": {s: majority_accuracy(e.dominant) for s, e in scenes.items()},
            "chance": 1.0 / len(cards.land_cover_classes()), "accuracy": table}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Print the table (and write it as JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="run folder")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--variant", default="main")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = measure(args.run, args.split, args.variant)
    sensors = list(result["n"])
    print(f"zero-shot dominant-class accuracy, {args.split} split of {args.run} "
          f"({', '.join(f'{s}: {n} scenes' for s, n in result['n'].items())})")
    print(f"{'prompts':<34}" + "".join(f"{s:>8}" for s in sensors))
    for name, row in result["accuracy"].items():
        print(f"{name:<34}" + "".join(f"{row[s]:>8.3f}" for s in sensors))
    print(f"{'majority class':<34}" + "".join(f"{result['majority'][s]:>8.3f}" for s in sensors))
    print(f"{'chance (1/9)':<34}" + "".join(f"{result['chance']:>8.3f}" for _ in sensors))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
