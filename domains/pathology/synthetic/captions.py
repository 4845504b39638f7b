"""Free-text captions of synthetic tiles, worded from the knowledge card.

A caption is never the bare label: it mixes the class name or one of its synonyms with
morphology phrases (the card's descriptions and caption words) in one of several
sentence styles, like the figure legends and educational captions of ARCH / Quilt-1M;
about a third of the captions name no class at all and describe the morphology only, so
a model must learn the words of the knowledge card, not just the class names.
"""

from __future__ import annotations

import numpy as np

from domains.pathology import cards

_VIEWS = ("", "", "H&E, 20x. ", "High-power view: ", "Colorectal specimen. ",
          "Photomicrograph, H&E stain: ", "Section of colon: ")


def _pick(items: list[str], rng: np.random.Generator) -> str:
    return items[int(rng.integers(len(items)))]


def _words(code: str, rng: np.random.Generator, k: int) -> list[str]:
    words = cards.caption_words(code)
    order = rng.permutation(len(words))[:k]
    return [words[i] for i in order]


def caption(code: str, rng: np.random.Generator) -> str:
    """One caption of a tile of the class with NCT code ``code``.

    Args:
        code: NCT-CRC-HE class code (``TUM``) or any name the card knows.
        rng: Random generator (the wording is drawn from it).

    Returns:
        A one- or two-sentence caption.
    """
    cls = cards.code_to_class(code)
    if cls is None:
        raise KeyError(f"unknown tissue class {code!r}")
    name = cls if rng.random() < 0.4 else _pick(cards.synonyms(cls), rng)
    description = _pick(cards.descriptions(cls), rng)
    first, second = _words(cls, rng, 2)
    family = _pick([h for h in cards.hypernyms(cls)[1:] if h not in name.lower()]
                   or ["tissue"], rng)
    style = int(rng.integers(8))
    if style == 0:
        text = f"H&E tile of {name}: {description}."
    elif style == 1:
        text = f"{description}, consistent with {name}."
    elif style == 2:
        text = f"{name} showing {first} and {second}."
    elif style == 3:
        text = f"{description}; {first}."  # no class name
    elif style == 4:
        text = f"Tissue with {first}, {second} and {description}."  # no class name
    elif style == 5:
        text = f"{name} ({family}) with {first}."
    elif style == 6:
        text = f"{description}. {second.capitalize()} noted."  # no class name
    else:
        text = f"Region of {name}; {description}."
    return _pick(list(_VIEWS), rng) + text[0].upper() + text[1:]
