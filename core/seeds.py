"""Several seeds of one run: each a normal run folder, then every figure and claim over seeds.

``train --seeds 0 1 2`` trains the whole run (main model and companions) once per seed
into ``OUT/seed-<s>/`` — each an ordinary run folder, so an interrupted seed continues
like any run and a finished one (its ``metrics.json`` written under the same config) is
kept — and then writes beside them:

- ``seeds.json``: every headline figure (``summary.figures`` of each seed's
  ``metrics.json``) as per-seed values, mean and sample sd; every claim's per-seed paired
  gain (its ``relative_gain``), their mean, sd and the verdict;
- ``seeds.md``: the same as two tables;
- ``seeds.png``: per claim, each seed's gain and the mean ± sd.

The verdict rule: a claim **holds** only when its paired gain is positive in every seed
*and* the mean gain exceeds its standard deviation (sample sd, over at least two seeds);
with one seed, or a gain missing in some seed, no verdict is given (``None``). What this
module adds to a domain's single run is only this loop and aggregation; it reads the
metrics files generically, so every domain can use it.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from core.atomic import atomic_write_bytes
from core.runs import RUN_CONFIG_FILE, claim_gain, config_differences, markdown_table

SEEDS_FILES = ("seeds.json", "seeds.md", "seeds.png")
METRICS_FILE = "metrics.json"


def seed_folder(out: Path, seed: int) -> Path:
    """The run folder of one seed: ``OUT/seed-<seed>``."""
    return Path(out) / f"seed-{seed}"


def mean_sd(values: Sequence[float | None]) -> dict[str, Any]:
    """Per-seed values with their mean and sample sd (``None`` where any value is missing).

    Args:
        values: One value per seed (``None``: missing in that seed).

    Returns:
        ``{"values", "mean", "sd", "n"}``; ``sd`` is ``None`` below two values.
    """
    known = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    complete = len(known) == len(values) and bool(known)
    return {"values": list(values), "n": len(known),
            "mean": statistics.fmean(known) if complete else None,
            "sd": statistics.stdev(known) if complete and len(known) > 1 else None}


def claim_verdict(gains: Sequence[float | None]) -> bool | None:
    """Whether a claim holds over seeds: positive gain in every seed and mean > sd.

    Args:
        gains: The claim's paired gain in each seed (positive = the claim's direction).

    Returns:
        ``True`` / ``False``; ``None`` with fewer than two seeds or a gain missing.
    """
    spread = mean_sd(gains)
    if spread["mean"] is None or spread["sd"] is None:
        return None
    return all(g > 0 for g in gains) and spread["mean"] > spread["sd"]


def _gain(claim: Mapping[str, Any]) -> float | None:
    """A claim's paired gain: its ``relative_gain``, else its first relative change."""
    if "relative_gain" in claim:
        return claim["relative_gain"]
    return claim_gain(claim)


def aggregate(metrics: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Every headline figure and claim of several seeds' ``metrics.json``.

    Args:
        metrics: Seed -> that seed's metrics (with ``summary.figures`` and ``summary.claims``).

    Returns:
        ``{"seeds", "figures": {name: mean_sd}, "claims": {name: mean_sd of the gains +
        "holds_per_seed" + "holds"}}`` (names in first-seen order).
    """
    seeds = list(metrics)
    summaries = [metrics[s].get("summary", {}) for s in seeds]
    figure_names = list(dict.fromkeys(k for s in summaries for k in s.get("figures", {})))
    claim_names = list(dict.fromkeys(k for s in summaries for k in s.get("claims", {})))
    figures = {name: mean_sd([s.get("figures", {}).get(name) for s in summaries])
               for name in figure_names}
    claims = {}
    for name in claim_names:
        per_seed = [s.get("claims", {}).get(name) or {} for s in summaries]
        gains = [_gain(c) for c in per_seed]
        claims[name] = {**mean_sd(gains), "holds_per_seed": [c.get("holds") for c in per_seed],
                        "holds": claim_verdict(gains)}
    return {"seeds": seeds, "figures": figures, "claims": claims,
            "rule": "holds: paired gain > 0 in every seed and mean gain > its sample sd"}


def verdict_text(holds: bool | None) -> str:
    """``holds`` / ``does not hold`` / ``no verdict``."""
    return "no verdict" if holds is None else "holds" if holds else "does not hold"


def _pm(entry: Mapping[str, Any], percent: bool = False) -> str:
    """``mean ± sd`` of an aggregated entry (percentages for gains)."""
    mean, sd = entry["mean"], entry["sd"]
    if mean is None:
        return "—"
    if percent:
        return f"{mean:+.1%}" + ("" if sd is None else f" ± {sd:.1%}")
    return f"{mean:.3f}" + ("" if sd is None else f" ± {sd:.3f}")


def markdown(summary: Mapping[str, Any], title: str = "Seeds") -> str:
    """``seeds.md``: figures as mean ± sd, claims with per-seed gains and the verdict."""
    seeds = summary["seeds"]
    lines = [f"# {title}: {len(seeds)} seeds ({', '.join(str(s) for s in seeds)})", "",
             "Each seed trains every model of the run anew (weights, shuffling, "
             "augmentation); sd is the sample standard deviation over seeds.", "",
             "## Headline figures", ""]
    lines += markdown_table(["figure", "mean ± sd", *[f"seed {s}" for s in seeds]],
                            [[k, _pm(v), *v["values"]] for k, v in summary["figures"].items()])
    lines += ["", "## Claims", "", f"Rule: a claim {summary['rule']}.", ""]
    rows = [[k, *[("—" if g is None else f"{g:+.1%}") for g in v["values"]],
             _pm(v, percent=True), verdict_text(v["holds"])]
            for k, v in summary["claims"].items()]
    lines += markdown_table(["claim", *[f"gain seed {s}" for s in seeds], "mean ± sd",
                             "verdict"], rows)
    return "\n".join(lines) + "\n"


def plot(summary: Mapping[str, Any], path: Path) -> None:
    """``seeds.png``: each claim's per-seed gains (dots) and mean ± sd (bar, whisker)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    claims = summary["claims"]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(claims) + 1.5), 3.6))
    for x, entry in enumerate(claims.values()):
        known = [g for g in entry["values"] if g is not None]
        if entry["mean"] is not None:
            color = "tab:green" if entry["holds"] else "tab:red"
            ax.bar(x, entry["mean"], color=color, alpha=0.35, width=0.6)
            if entry["sd"] is not None:
                ax.errorbar(x, entry["mean"], yerr=entry["sd"], color="black", capsize=5)
        ax.scatter([x] * len(known), known, color="black", s=14, zorder=3)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(claims)), [n.replace("_", "\n") for n in claims], fontsize=8)
    ax.set_ylabel("paired gain (relative)")
    ax.set_title(f"claims over {len(summary['seeds'])} seeds (green: holds)")
    fig.tight_layout()
    buffer = path.with_suffix(".tmp.png")
    fig.savefig(buffer, dpi=120)
    plt.close(fig)
    buffer.replace(path)


def write(out: Path, summary: Mapping[str, Any], title: str = "Seeds") -> None:
    """Write ``seeds.json``, ``seeds.md`` and ``seeds.png`` into ``out`` (atomically)."""
    out = Path(out)
    atomic_write_bytes(out / "seeds.json", json.dumps(summary, indent=2).encode())
    atomic_write_bytes(out / "seeds.md", markdown(summary, title).encode())
    plot(summary, out / "seeds.png")


def finished(folder: Path, config: Mapping[str, Any]) -> bool:
    """Whether a seed's run folder holds metrics of a run with this very config."""
    saved = folder / RUN_CONFIG_FILE
    if not (folder / METRICS_FILE).is_file() or not saved.is_file():
        return False
    return not config_differences(yaml.safe_load(saved.read_text()) or {}, config)


def check_seeds_folder(out: Path, overwrite: bool = False) -> None:
    """Refuse an ``OUT`` that holds other things than an earlier seeds run (unless overwrite).

    Raises:
        ValueError: ``out`` is a non-empty folder without ``seeds.json`` or ``seed-*``.
    """
    out = Path(out)
    if not out.is_dir() or not any(out.iterdir()) or overwrite:
        return
    ours = (out / "seeds.json").is_file() or any(out.glob("seed-*"))
    if not ours:
        raise ValueError(f"{out}: not empty and not a seeds folder (no seeds.json or "
                         f"seed-*/); pick another --out, or pass --overwrite to write the "
                         f"seeds into it (nothing already there is removed)")


def run_seeds(config: Mapping[str, Any], seeds: Sequence[int],
              train: Callable[[dict[str, Any]], Path], *, overwrite: bool = False,
              title: str = "Seeds") -> dict[str, Any]:
    """Train a run once per seed (each into ``OUT/seed-<s>``) and aggregate the seeds.

    Args:
        config: The resolved run configuration; ``out`` is the seeds folder ``OUT``.
        seeds: The seeds (distinct).
        train: Trains and evaluates one run config into its ``out`` (a domain's run).
        overwrite: Passed on as the domain's ``--overwrite`` (also lets ``OUT`` be a
            non-empty folder that is not a seeds folder).
        title: Heading of ``seeds.md``.

    Returns:
        The aggregate (see :func:`aggregate`), also written to ``OUT``.

    Raises:
        ValueError: Repeated seeds, or ``OUT`` holds something else (see
            :func:`check_seeds_folder`).
    """
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"--seeds needs distinct seeds, got {list(seeds)}")
    out = Path(config["out"])
    check_seeds_folder(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        folder = seed_folder(out, seed)
        seeded = {**config, "seed": int(seed), "out": str(folder)}
        if not finished(folder, seeded):
            train(seeded)
        metrics[int(seed)] = json.loads((folder / METRICS_FILE).read_text())
    summary = aggregate(metrics)
    write(out, summary, title)
    return summary


def print_verdicts(summary: Mapping[str, Any]) -> None:
    """One line per claim: per-seed gains, mean ± sd, verdict."""
    for name, entry in summary["claims"].items():
        gains = ", ".join("—" if g is None else f"{g:+.1%}" for g in entry["values"])
        print(f"{name}: [{gains}] {_pm(entry, percent=True)} -> {verdict_text(entry['holds'])}")
    for name, entry in summary["figures"].items():
        print(f"{name}: {_pm(entry)}")
