"""Radiology reports: sections, the training caption and CheXpert-style rule labels.

There is no report parser in pydicom or MONAI to build on; this module follows what the
reference tools do:

- **Sections** (MIMIC-CXR's ``section_parser`` and CheXzero's preprocessing): headers are
  recognised in any case, with or without numbering ("1. FINDINGS:"), spaces before the
  colon, alone on their line without a colon, or inline after a sentence ("... ___.
  Findings: ..."). FINDINGS and IMPRESSION (also CONCLUSION(S), OPINION, SUMMARY) are
  kept; INDICATION, HISTORY, COMPARISON, TECHNIQUE, EXAMINATION and the like are not;
  text is cut at RECOMMENDATION(S) and NOTIFICATION as CheXzero does. A report without
  any header is all findings (MIMIC's fallback); when the FINDINGS header is missing, the
  paragraphs that follow a short section's own paragraph ("COMPARISON: None." then a
  blank line, then the findings) are the findings.
- **Caption** (what training reads): impression, then findings; the de-identification
  placeholder ``___`` is removed together with the words that only lead to it
  ("compared to ___", "Dr. ___"), list numbering is dropped, spaces are collapsed.
- **Labels** (CheXpert labeller / NegEx-style rules, vocabulary from the knowledge card
  ``datasets/radiology/findings.yaml``): per sentence and clause, a mention of a finding is
  positive unless an uncertainty cue ("may", "possible", "cannot exclude", "versus",
  "likely", ...) or a negation cue ("no", "without", "negative for", "free of",
  "resolved", "is not seen", ...) is in its scope. Scope before a mention runs back to
  the start of the clause (boundaries: ".", ";", "but", "however", "although", "there is",
  a comma that opens a new positive statement); scope after a mention runs to the next
  comma or boundary. Pseudo-negations ("no change in", "no increase") are not cues; two
  findings offered as alternatives ("atelectasis or pneumonia") without a negation are
  uncertain, as in the CheXpert labeller.
  Mentions are aggregated over the report as CheXpert does (positive > uncertain >
  negative), and "No Finding" is positive when nothing but Support Devices is positive
  or uncertain.

Report text is never logged or put into an exception message by this module.
"""

from __future__ import annotations

import math
import re
from functools import cache

from domains.radiology import cards

# -- sections ------------------------------------------------------------------------------

#: Header words -> the section they open (None: a section that is not kept).
_HEADERS: dict[str, str | None] = {
    "findings": "findings", "finding": "findings",
    "impression": "impression", "impressions": "impression", "conclusion": "impression",
    "conclusions": "impression", "opinion": "impression", "summary": "impression",
    "findings and impression": "impression", "findings/impression": "impression",
    "findings and impressions": "impression", "impression and recommendations": "impression",
    "indication": None, "indications": None, "history": None, "clinical history": None,
    "clinical information": None, "reason for exam": None, "reason for examination": None,
    "comparison": None, "comparisons": None, "technique": None, "examination": None,
    "exam": None, "procedure": None, "wet read": None, "final report": None,
    "addendum": None, "recommendation": None, "recommendations": None,
    "recommendation(s)": None, "notification": None, "notifications": None,
}

#: Sections that end what is read: nothing after them belongs to findings.
_CUT = {"recommendation", "recommendations", "recommendation(s)", "notification",
        "notifications", "addendum"}
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_NAMES = "|".join(re.escape(h) for h in sorted(_HEADERS, key=len, reverse=True))
# A header: at a line start (or after a sentence end), optional numbering, the name,
# then a colon (spaces allowed before it) -- or the name alone on its line.
_HEADER = re.compile(
    rf"(?:(?<=^)|(?<=\n)|(?<=[.!?]\s)|(?<=[.!?]\s\s))[ \t]*(?:\d+\s*[.)]\s*)?"
    rf"(?P<name>{_NAMES})[ \t]*(?::|(?=[ \t]*(?:\n|$)))",
    re.IGNORECASE)


def split_sections(text: str) -> dict[str, str]:
    """The findings and impression sections of a report.

    Args:
        text: The report (any case, spacing, numbering; headers may be missing).

    Returns:
        ``{"findings": ..., "impression": ...}``, stripped; ``""`` when a section is
        missing or empty. Without any header the whole text is the findings.
    """
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    matches = list(_HEADER.finditer(text))
    if not matches:
        return {"findings": text.strip(), "impression": ""}
    found: dict[str, list[str]] = {"findings": [], "impression": []}
    orphans: list[str] = []  # paragraphs after a short section's own (a missing FINDINGS:)
    for match, following in zip(matches, matches[1:] + [None], strict=True):
        name = " ".join(match.group("name").lower().split())
        section = _HEADERS[name]
        end = following.start() if following is not None else len(text)
        body = text[match.end():end].strip()
        if section is not None and body:
            found[section].append(body)
        elif section is None and body and name not in _CUT:
            orphans.extend(_PARAGRAPH.split(body)[1:])
    if not found["findings"]:
        found["findings"] = [p.strip() for p in orphans if p.strip()]
    return {key: "\n".join(parts).strip() for key, parts in found.items()}


# -- caption -------------------------------------------------------------------------------

# The placeholder with the words that only lead to it ("compared to ___", "Dr. ___ on ___").
_PLACEHOLDER = re.compile(
    r"(?:\b(?:compared (?:to|with)|in comparison (?:to|with)|since|on|from|to|of|at|by|"
    r"with|dated|dr\.?|the|and)\s+)*_{2,}", re.IGNORECASE)
_NUMBERING = re.compile(r"(?:(?<=^)|(?<=\n)|(?<=[.!?:]\s)|(?<=[.!?:]))\s*\d{1,2}\s*[.)](?!\d)\s*")


def _tidy(text: str) -> str:
    """Placeholders and list numbers out, punctuation and spaces tidied, sentences capitalised."""
    text = _PLACEHOLDER.sub("", text)
    text = _NUMBERING.sub(" ", "\n" + text)
    text = " ".join(text.split())
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)       # "effusion ." -> "effusion."
    text = re.sub(r"([.;:!?])\s*[,;]+", r"\1", text)   # ". ," left by a removed placeholder
    text = re.sub(r"^[,;:.\s]+", "", text)
    text = re.sub(r"([.!?]\s+|^)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    return text.strip()


def report_caption(text: str) -> str:
    """What training reads of a report: impression, then findings, tidied.

    Args:
        text: The report.

    Returns:
        One line; ``""`` for an empty or header-only report.
    """
    sections = split_sections(text)
    parts = [_tidy(sections["impression"]), _tidy(sections["findings"])]
    return " ".join(p for p in parts if p)


# -- labels --------------------------------------------------------------------------------

_PSEUDO = re.compile(
    r"\b(?:no (?:significant |substantial |appreciable |definite |interval |overall )?"
    r"(?:change|increase|decrease|difference|worsening|improvement)|not only|"
    r"no longer (?:requires|needed)|without (?:significant |interval )?change|"
    r"to suggest|to indicate)\b")  # "no consolidation to suggest pneumonia": the "no" governs
_PRE_NEG = re.compile(
    r"\b(?:no|not|without|negative for|free of|clear of|absence of|absent|resolution of|"
    r"resolved|removal of|removed|rules? out|ruled out|nor|neither|never|lack of|"
    r"no evidence of|no signs? of)\b")
_PRE_UNC = re.compile(
    r"\b(?:may|might|possible|possibly|probable|probably|likely|questionable|question of|"
    r"cannot exclude|can not exclude|cannot rule out|can not rule out|could|suggestive of|"
    r"suggests|suggesting|suggest|concerning for|concern for|suspicious for|suspected|"
    r"suspect|versus|vs\.?|borderline|equivocal|indeterminate|presumed|perhaps|"
    r"differential (?:diagnosis )?includes|difficult to exclude|not excluded|"
    r"cannot be excluded|is not excluded|either|secondary to|worrisome for|suspicion (?:for|of)|"
    r"suggestion of|favor|favored|consider|considered|maybe|presumably|obscuring|obscured|"
    r"correlate clinically for|clinical correlation for)\b")
_POST_UNC = re.compile(
    r"\b(?:cannot be (?:entirely |completely )?(?:excluded|ruled out)|"
    r"can not be (?:entirely |completely )?(?:excluded|ruled out)|not (?:be )?excluded|"
    r"not ruled out|(?:is|are) (?:possible|suspected|questioned|likely|probable|"
    r"not entirely excluded)|may (?:be|have been) (?:present|seen|noted|developing|"
    r"forming|evolving)|versus|vs\.?|likely|suspected|obscured|"
    r"not well (?:seen|visualized|visualised|evaluated|assessed)|"
    r"(?:poorly|incompletely) (?:evaluated|assessed|visualized))\b|\?")
_POST_NEG = re.compile(
    r"\b(?:(?:is|are|was|were|has|have)?\s*(?:not|no longer)\s+(?:\w+\s+){0,2}?"
    r"(?:seen|identified|present|appreciated|evident|visualized|visualised|demonstrated|"
    r"detected|noted|visible|apparent|enlarged|widened)|"
    r"(?:has|have)? ?(?:resolved|been removed|been excluded|been ruled out)|"
    r"(?:is|are) (?:absent|unlikely|excluded|ruled out)|unlikely|removed|resolved)\b")
# Scope boundaries inside a sentence (what comes after one is a new statement).
_BOUNDARY = re.compile(
    r"\b(?:but|however|although|though|whereas|while|except|aside from|apart from|"
    r"otherwise|which|with the exception of|there (?:is|are|has been|have been)|"
    r"(?:is|are) (?:seen|present|noted|again seen))\b|[;:]|"
    r",\s*(?=(?:an?\s+|the\s+)?(?:small|moderate|large|mild|severe|left|right|bilateral|"
    r"persistent|stable|unchanged|increased|decreased|trace|minimal|there|new)\b)")
_SENTENCE = re.compile(r"(?<!\bdr)(?<!\bvs)\.(?!\d)|[\n!]|\s\d{1,2}\s*[.)](?!\d)")


@cache
def _finding_patterns() -> list[tuple[str, re.Pattern[str], re.Pattern[str] | None,
                                      re.Pattern[str] | None]]:
    """Per finding: (name, mention regex, normal regex, exclude regex) from the card."""
    compiled = []
    for finding in cards.findings():
        if finding == "No Finding":
            continue
        patterns = cards.labeller_patterns(finding)
        words = sorted(patterns["synonyms"], key=len, reverse=True)
        alternatives = [r"\b" + r"\s+".join(map(re.escape, w.lower().split())) + r"\b"
                        for w in words] + list(patterns["mention"])
        mention = re.compile("|".join(f"(?:{a})" for a in alternatives))
        normal = re.compile("|".join(f"(?:{p})" for p in patterns["normal"])) \
            if patterns["normal"] else None
        exclude = re.compile("|".join(f"(?:{p})" for p in patterns["exclude"])) \
            if patterns["exclude"] else None
        compiled.append((finding, mention, normal, exclude))
    return compiled


def _last_cue(text: str) -> str | None:
    """The nearest cue to the end of ``text`` (the scope before a mention): neg/unc/None."""
    text = _PSEUDO.sub(lambda m: "#" * len(m.group()), text)
    best, kind = -1, None
    for cue_kind, pattern in (("unc", _PRE_UNC), ("neg", _PRE_NEG)):
        for match in pattern.finditer(text):
            # an uncertainty cue containing a negation word ("cannot exclude") wins a tie
            if match.end() > best or (match.end() == best and cue_kind == "unc"):
                best, kind = match.end(), cue_kind
    return kind


def _classify(clause: str, start: int, end: int) -> float:
    """The label of the mention ``clause[start:end]`` from the cues in its scope."""
    before = clause[:start]
    boundaries = list(_BOUNDARY.finditer(before))
    if boundaries:
        before = before[boundaries[-1].end():]
    inside = clause[start:end]
    pre = _last_cue(before + " " + re.sub(r"\b(?!not\b)\w+\b", "", inside))
    after = clause[end:]
    stop = re.search(r",|" + _BOUNDARY.pattern, after)
    after = after[:stop.start()] if stop else after
    after = _PSEUDO.sub(lambda m: "#" * len(m.group()), after)
    post_unc = _POST_UNC.search(after) is not None
    post_neg = _POST_NEG.search(after) is not None
    # "X or Y" without a negation is an alternative, uncertain (CheXpert's convention)
    alternative = re.search(r"\bor\s+(?:\w+\s+){0,2}$", before) is not None or \
        re.match(r"\s*(?:and/)?or\b", after) is not None
    questioned = pre != "neg" and re.search(r"\?\s*(?:\w+\s+){0,2}$", before) is not None
    if pre == "unc" or post_unc or questioned or \
            (alternative and pre != "neg" and not post_neg):
        return -1.0
    if pre == "neg" or post_neg:
        return 0.0
    return 1.0


def _clean_for_labels(text: str) -> str:
    text = _PLACEHOLDER.sub(" ", text.lower())
    return " ".join(text.split())


def label_report(text: str) -> dict[str, float]:
    """CheXpert labels of a report from its findings and impression sections.

    Args:
        text: The report.

    Returns:
        Over :func:`cards.findings` in order: 1.0 positive, 0.0 negative, -1.0 uncertain,
        NaN not mentioned. "No Finding" is 1.0 when the report has content and no
        finding except Support Devices is positive or uncertain, else NaN. An empty or
        header-only report is all NaN.
    """
    sections = split_sections(text)
    body = _clean_for_labels(sections["impression"] + " . " + sections["findings"])
    labels = {f: math.nan for f in cards.findings()}
    if not body.strip(" ."):
        return labels
    votes: dict[str, list[float]] = {}
    for sentence in _SENTENCE.split(body):
        if not sentence.strip():
            continue
        for finding, mention, normal, exclude in _finding_patterns():
            masked = exclude.sub(lambda m: "#" * len(m.group()), sentence) if exclude \
                else sentence
            if normal is not None and normal.search(masked):
                votes.setdefault(finding, []).append(0.0)
            for match in mention.finditer(masked):
                votes.setdefault(finding, []).append(_classify(masked, *match.span()))
    for finding, found in votes.items():
        labels[finding] = 1.0 if 1.0 in found else (-1.0 if -1.0 in found else 0.0)
    others = [v for f, v in labels.items() if f not in ("No Finding", "Support Devices")]
    if not any(v in (1.0, -1.0) for v in others):
        labels["No Finding"] = 1.0
    return labels
