"""Typed access to the radiology knowledge card, ``datasets/radiology/findings.yaml``.

The card is data (as DeViDe and KEEP use knowledge): the 14 CheXpert observations in
CheXpert's column order, per finding its synonyms, a one-line definition, visual
descriptions of presence and absence, the patterns the report labeller matches, and the
CheXzero prompt templates. Nothing about the finding vocabulary is written in Python;
this module only reads the card (through :func:`core.resources.dataset_card`) and checks
that it is complete, so a broken card fails when first read, naming the finding and key.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from core.resources import dataset_card

#: Keys every finding of the card must have.
_REQUIRED = ("prompt_name", "synonyms", "definition", "descriptions", "negative_descriptions",
             "mention_patterns", "normal_patterns", "exclude_patterns")


@cache
def card(name: str = "findings") -> dict[str, Any]:
    """A radiology dataset card by short name (default: the findings knowledge card).

    Args:
        name: Card file name under ``datasets/radiology/`` without ``.yaml``.

    Returns:
        The card as a dict (``findings`` cards are checked for completeness).

    Raises:
        ValueError: When the findings card misses a key, naming the finding and the key.
    """
    loaded = dataset_card(f"radiology/{name}")
    if name == "findings":
        _check(loaded)
    return loaded


def _check(loaded: dict[str, Any]) -> None:
    knowledge_ = loaded.get("knowledge") or {}
    for finding in loaded.get("findings") or []:
        entry = knowledge_.get(finding)
        if entry is None:
            raise ValueError(f"datasets/radiology/findings.yaml: no knowledge for {finding!r}")
        missing = [key for key in _REQUIRED if key not in entry]
        if missing:
            raise ValueError(f"datasets/radiology/findings.yaml: {finding!r} lacks {missing}")
    templates = loaded.get("prompt_templates") or {}
    if not templates.get("positive") or not templates.get("negative"):
        raise ValueError("datasets/radiology/findings.yaml: prompt_templates needs positive "
                         "and negative lists")


def findings() -> list[str]:
    """The 14 CheXpert observations in label-column order ("No Finding" first)."""
    return list(card()["findings"])


def _entry(finding: str) -> dict[str, Any]:
    entries = card()["knowledge"]
    if finding not in entries:
        raise KeyError(f"unknown finding {finding!r}; known: {', '.join(findings())}")
    return entries[finding]


def knowledge() -> dict[str, dict[str, Any]]:
    """Per finding: ``synonyms``, ``definition``, ``descriptions``, ``negative_descriptions``.

    Returns:
        A fresh dict (callers may change it) keyed by the CheXpert names.
    """
    return {f: {"synonyms": list(_entry(f)["synonyms"]),
                "definition": str(_entry(f)["definition"]),
                "descriptions": list(_entry(f)["descriptions"]),
                "negative_descriptions": list(_entry(f)["negative_descriptions"])}
            for f in findings()}


def prompt_templates() -> dict[str, list[str]]:
    """CheXzero's prompt templates: ``{"positive": ["{}"], "negative": ["no {}"]}``."""
    templates = card()["prompt_templates"]
    return {"positive": list(templates["positive"]), "negative": list(templates["negative"])}


def prompt_name(finding: str) -> str:
    """The lower-case words a template receives for ``finding`` (``"pleural effusion"``)."""
    return str(_entry(finding)["prompt_name"])


def name_prompts(finding: str) -> dict[str, list[str]]:
    """Names-only prompts of one finding: the templates filled with its prompt name.

    "No Finding" cannot be templated ("no no finding"), so the card gives its prompts whole.

    Args:
        finding: A CheXpert observation name.

    Returns:
        ``{"positive": [...], "negative": [...]}``.
    """
    entry = _entry(finding)
    if "prompts" in entry:
        return {"positive": list(entry["prompts"]["positive"]),
                "negative": list(entry["prompts"]["negative"])}
    templates = prompt_templates()
    name = prompt_name(finding)
    return {kind: [t.format(name) for t in templates[kind]] for kind in ("positive", "negative")}


def description_prompts(finding: str) -> dict[str, list[str]]:
    """Knowledge prompts of one finding: its visual descriptions of presence and absence.

    Args:
        finding: A CheXpert observation name.

    Returns:
        ``{"positive": descriptions, "negative": negative_descriptions}``.
    """
    entry = _entry(finding)
    return {"positive": list(entry["descriptions"]),
            "negative": list(entry["negative_descriptions"])}


def labeller_patterns(finding: str) -> dict[str, list[str]]:
    """What the report labeller matches for one finding (regular expressions, lower case).

    Returns:
        ``{"synonyms": [...], "mention": [...], "normal": [...], "exclude": [...]}``; synonyms
        are plain phrases (the prompt name included), the rest regular expressions.
    """
    entry = _entry(finding)
    names = [prompt_name(finding)] if finding != "No Finding" else []
    return {"synonyms": list(dict.fromkeys(names + [str(s) for s in entry["synonyms"]])),
            "mention": list(entry["mention_patterns"]),
            "normal": list(entry["normal_patterns"]),
            "exclude": list(entry["exclude_patterns"])}
