"""Typed access to the pathology knowledge card, ``datasets/pathology/tissue_classes.yaml``.

The card is data (KEEP's idea: knowledge as text, not code): the nine colorectal tissue
classes of NCT-CRC-HE-100K in the order of their codes, per class its NCT code, synonyms, a
definition, morphology descriptions, hypernyms (tumour / non-tumour, tissue family) and
caption words, and CONCH's prompt templates. This module only reads the card (through
:func:`core.resources.dataset_card`, as radiology's ``cards.py`` does) and checks it when
first read, so a broken card fails naming the file, the class and the key.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from core.resources import dataset_card

CARD_FILE = "datasets/pathology/tissue_classes.yaml"
#: Keys every class of the card must have, and whether each is a non-empty list.
_REQUIRED = {"code": False, "synonyms": True, "definition": False, "descriptions": True,
             "hypernyms": True, "caption_words": True}
_TUMOUR, _NON_TUMOUR = "tumour", "non-tumour"


@cache
def card(name: str = "tissue_classes") -> dict[str, Any]:
    """A pathology dataset card by short name (default: the tissue-class knowledge card).

    Args:
        name: Card file name under ``datasets/pathology/`` without ``.yaml``.

    Returns:
        The card as a dict (the ``tissue_classes`` card is checked for completeness).

    Raises:
        ValueError: When the tissue-class card is incomplete or ambiguous, naming the file,
            the class and the key.
    """
    loaded = dataset_card(f"pathology/{name}")
    if name == "tissue_classes":
        check_card(loaded)
    return loaded


def check_card(loaded: Any, source: str = CARD_FILE) -> None:
    """Check a tissue-class card: every class complete, codes and names unambiguous.

    Args:
        loaded: The parsed card.
        source: The file named in errors.

    Raises:
        ValueError: Naming ``source``, the class and what is wrong.
    """
    if not isinstance(loaded, dict):
        raise ValueError(f"{source}: expected a mapping, got {type(loaded).__name__}")
    classes = loaded.get("classes")
    if not isinstance(classes, list) or not classes:
        raise ValueError(f"{source}: 'classes' must be a non-empty list of class names")
    knowledge_ = loaded.get("knowledge")
    if not isinstance(knowledge_, dict):
        raise ValueError(f"{source}: 'knowledge' must map each class to its entry")
    extra = sorted(set(knowledge_) - set(classes))
    if extra:
        raise ValueError(f"{source}: knowledge for classes not listed in 'classes': {extra}")
    owner: dict[str, str] = {}  # lower-case name, code or synonym -> class
    for cls in classes:
        entry = knowledge_.get(cls)
        if not isinstance(entry, dict):
            raise ValueError(f"{source}: no knowledge for class {cls!r}")
        for key, is_list in _REQUIRED.items():
            value = entry.get(key)
            if is_list:
                if not isinstance(value, list) or not value \
                        or not all(isinstance(v, str) and v.strip() for v in value):
                    raise ValueError(f"{source}: class {cls!r}: {key!r} must be a non-empty "
                                     f"list of phrases, got {value!r}")
            elif not isinstance(value, str) or not value.strip():
                raise ValueError(f"{source}: class {cls!r}: {key!r} must be a non-empty "
                                 f"string, got {value!r}")
        if entry["hypernyms"][0] not in (_TUMOUR, _NON_TUMOUR):
            raise ValueError(f"{source}: class {cls!r}: the first hypernym must be "
                             f"{_TUMOUR!r} or {_NON_TUMOUR!r}, got {entry['hypernyms'][0]!r}")
        for alias in [cls, entry["code"], *entry["synonyms"]]:
            key = alias.strip().lower()
            if owner.get(key, cls) != cls:
                raise ValueError(f"{source}: {alias!r} names both {owner[key]!r} and "
                                 f"{cls!r}; a name, code or synonym must name one class")
            owner[key] = cls
    templates = loaded.get("prompt_templates")
    if not isinstance(templates, list) or not templates:
        raise ValueError(f"{source}: 'prompt_templates' must be a non-empty list")
    bad = [t for t in templates if not isinstance(t, str) or t.count("{}") != 1]
    if bad:
        raise ValueError(f"{source}: prompt templates need exactly one '{{}}': {bad}")


def _entry(cls: str) -> dict[str, Any]:
    name = code_to_class(cls)
    if name is None:
        raise KeyError(f"unknown tissue class {cls!r}; known: {', '.join(tissue_classes())} "
                       f"(codes {', '.join(class_codes())})")
    return card()["knowledge"][name]


def tissue_classes() -> list[str]:
    """The nine class names in NCT-CRC-HE code order (``adipose`` ... ``colorectal
    adenocarcinoma epithelium``)."""
    return list(card()["classes"])


def class_codes() -> list[str]:
    """The NCT-CRC-HE folder codes in the same order (``ADI``, ``BACK``, ... ``TUM``)."""
    return [str(card()["knowledge"][c]["code"]) for c in tissue_classes()]


@cache
def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for cls in tissue_classes():
        entry = card()["knowledge"][cls]
        for alias in [cls, entry["code"], *entry["synonyms"]]:
            table[alias.strip().lower()] = cls
    return table


def code_to_class(code: str) -> str | None:
    """The class a code, class name or synonym names (case-insensitive); None if none.

    Args:
        code: ``"TUM"``, ``"tum"``, ``"colorectal adenocarcinoma epithelium"``, ``"fat"``...

    Returns:
        The card's class name, or None when the text names no class.
    """
    return _aliases().get(str(code).strip().lower())


def class_code(cls: str) -> str:
    """The NCT-CRC-HE code of a class (given by name, code or synonym)."""
    return str(_entry(cls)["code"])


def synonyms(cls: str) -> list[str]:
    """Other names of a class (the class name itself not included)."""
    return list(_entry(cls)["synonyms"])


def definition(cls: str) -> str:
    """The one-line definition of a class."""
    return str(_entry(cls)["definition"])


def descriptions(cls: str) -> list[str]:
    """Morphology descriptions of a class in an H&E tile (the knowledge prompts)."""
    return list(_entry(cls)["descriptions"])


def hypernyms(cls: str) -> list[str]:
    """Broader categories of a class: ``tumour`` / ``non-tumour`` first, then its family."""
    return list(_entry(cls)["hypernyms"])


def caption_words(cls: str) -> list[str]:
    """Short morphology phrases a caption of this class may use."""
    return list(_entry(cls)["caption_words"])


def prompt_templates() -> list[str]:
    """CONCH's prompt templates, each with one ``{}`` for the class name or a synonym."""
    return list(card()["prompt_templates"])


def tumour_classes() -> list[str]:
    """The classes whose first hypernym is ``tumour`` (the slide-level positive classes)."""
    return [c for c in tissue_classes() if hypernyms(c)[0] == _TUMOUR]


def knowledge() -> dict[str, dict[str, Any]]:
    """Per class: ``code``, ``synonyms``, ``definition``, ``descriptions``, ``hypernyms``.

    Returns:
        A fresh dict (callers may change it) keyed by the class names, in card order.
    """
    return {c: {"code": class_code(c), "synonyms": synonyms(c), "definition": definition(c),
                "descriptions": descriptions(c), "hypernyms": hypernyms(c)}
            for c in tissue_classes()}
