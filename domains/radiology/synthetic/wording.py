"""Free-text reports for the synthetic radiographs: varied wording, negations, uncertainty.

Each study's report has the MIMIC-CXR shape (EXAMINATION / INDICATION / COMPARISON /
FINDINGS / IMPRESSION, sometimes a RECOMMENDATION after the impression, ``___`` where a
de-identified name or date was). Every simulated finding is stated positively (with its
severity and side), negated ("No pleural effusion."), hedged ("Cannot exclude a small
pneumothorax." — only for mild findings; their label is then -1, uncertain) or left
unmentioned (absent findings only). The wording is drawn from several phrasings per
finding, so a model cannot key on one sentence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SIDE = {"left": "left", "right": "right", "both": "bilateral"}
SIZE = {"mild": "small", "moderate": "moderate", "severe": "large"}
DEGREE = {"mild": "mild", "moderate": "moderate", "severe": "marked"}

POSITIVE: dict[str, list[str]] = {
    "Cardiomegaly": ["The heart is {degree}ly enlarged.", "{Degree} cardiomegaly.",
                     "Enlarged cardiac silhouette, {degree}.",
                     "Cardiac silhouette is {degree}ly enlarged."],
    "Pleural Effusion": ["{Size} {side} pleural effusion.",
                         "There is a {size} {side} pleural effusion.",
                         "{Size} {side} effusion with blunting of the costophrenic angle.",
                         "Layering {side} pleural fluid, {size}."],
    "Pneumothorax": ["{Size} {side} pneumothorax.", "There is a {size} {side} apical pneumothorax.",
                     "{Side} pneumothorax, {size} in size, with a visible pleural line."],
    "Consolidation": ["Focal consolidation in the {side} lung.",
                      "{Side} airspace consolidation, {degree}.",
                      "Patchy {side} consolidation concerning for pneumonia.",
                      "Dense {side} lung consolidation with air bronchograms."],
    "Lung Lesion": ["{Nodule} in the {side} lung.", "A {size} {side} pulmonary {nodule_lc}.",
                    "Well-circumscribed {side} lung {nodule_lc} is noted."],
    "Atelectasis": ["{Side} basilar atelectasis.", "Plate-like atelectasis at the {side} base.",
                    "{Degree} {side} lower lobe atelectasis.",
                    "Subsegmental atelectasis in the {side} lower lung."],
}
NEGATIVE: dict[str, list[str]] = {
    "Cardiomegaly": ["Heart size is normal.", "The cardiac silhouette is within normal limits.",
                     "No cardiomegaly.", "Normal heart size."],
    "Pleural Effusion": ["No pleural effusion.", "No effusion.",
                         "The costophrenic angles are sharp.", "There is no pleural effusion."],
    "Pneumothorax": ["No pneumothorax.", "There is no pneumothorax.",
                     "No evidence of pneumothorax."],
    "Consolidation": ["No focal consolidation.", "The lungs are clear without consolidation.",
                      "No consolidation."],
    "Lung Lesion": ["No pulmonary nodules or masses.", "No lung nodule.",
                    "No suspicious pulmonary mass."],
    "Atelectasis": ["No atelectasis.", "No evidence of atelectasis."],
}
UNCERTAIN: dict[str, list[str]] = {
    "Cardiomegaly": ["Borderline cardiomegaly cannot be excluded.",
                     "Possible mild cardiomegaly."],
    "Pleural Effusion": ["Possible small {side} pleural effusion.",
                         "Cannot exclude a small {side} effusion."],
    "Pneumothorax": ["Cannot exclude a small pneumothorax.",
                     "Questionable small {side} apical pneumothorax."],
    "Consolidation": ["Possible early {side} consolidation.",
                      "Subtle {side} opacity, may represent consolidation."],
    "Lung Lesion": ["Possible small {side} nodule.",
                    "A {side} nodular density cannot be excluded."],
    "Atelectasis": ["Likely minimal {side} basilar atelectasis.",
                    "Possible subsegmental atelectasis at the {side} base."],
}
NORMAL_IMPRESSION = ["No acute cardiopulmonary process.", "No acute intrathoracic abnormality.",
                     "Normal chest radiograph.", "No acute cardiopulmonary abnormality."]
INDICATIONS = ["___-year-old with cough.", "Shortness of breath.",
               "___ with fever, eval for pneumonia.", "Chest pain.",
               "Preoperative evaluation.", "History: ___ with dyspnea."]
RECOMMENDATIONS = ["RECOMMENDATION(S): Follow-up chest radiograph in ___ weeks.",
                   "NOTIFICATION: The findings were discussed with Dr. ___ at ___.",
                   "RECOMMENDATION(S): CT chest for further evaluation."]


def _fill(template: str, finding: dict[str, Any]) -> str:
    severity, side = finding.get("severity", "mild"), finding.get("side", "right")
    nodule = "Mass" if severity == "severe" else "Nodule"
    words = {"side": SIDE[side], "size": SIZE[severity], "degree": DEGREE[severity],
             "nodule_lc": nodule.lower(), "Nodule": nodule}
    text = template.format(**{**words, **{k.capitalize(): v.capitalize()
                                           for k, v in words.items() if k[0].islower()}})
    return text[0].upper() + text[1:]


def write_report(findings: dict[str, dict[str, Any]], uncertain: set[str],
                 rng: np.random.Generator) -> str:
    """A free-text report of one study.

    Args:
        findings: The drawn findings (name -> severity, side).
        uncertain: Findings stated with hedging (their label is -1).
        rng: Random generator (wording, order, sections).

    Returns:
        The report text.
    """
    def pick(options: list[str]) -> str:
        return options[int(rng.integers(len(options)))]

    positive, negative = [], []
    for name in POSITIVE:
        if name in findings:
            table = UNCERTAIN if name in uncertain else POSITIVE
            positive.append(_fill(pick(table[name]), findings[name]))
        elif rng.random() < 0.6:  # absent findings are often, not always, negated
            negative.append(pick(NEGATIVE[name]))
    order = rng.permutation(len(positive)).tolist()
    positive = [positive[i] for i in order]
    body = positive + [negative[i] for i in rng.permutation(len(negative)).tolist()]
    if not findings:
        impression = [pick(NORMAL_IMPRESSION)]
    else:
        impression = positive[: max(1, int(rng.integers(1, len(positive) + 1)))]
        if rng.random() < 0.3:
            impression = [f"{i + 1}. {line}" for i, line in enumerate(impression)]
    lines = ["FINAL REPORT", "EXAMINATION: CHEST (PA AND LAT)",
             f"INDICATION: {pick(INDICATIONS)}",
             f"COMPARISON: {pick(['___.', 'None.', 'Prior radiograph from ___.'])}", ""]
    style = rng.random()
    if style < 0.15:  # no FINDINGS header: the body runs on after the comparison
        lines.append(" ".join(body))
    else:
        header = "FINDINGS:" if style < 0.8 else "Findings:"
        lines.append(f"{header} {' '.join(body)}" if rng.random() < 0.5
                     else f"{header}\n{' '.join(body)}")
    lines.append("")
    if rng.random() < 0.9 or style < 0.15 or not body:  # never a report without any text
        header = "IMPRESSION:" if rng.random() < 0.8 else "Impression:"
        lines.append(f"{header}\n" + "\n".join(impression))
    if rng.random() < 0.15:
        lines += ["", pick(RECOMMENDATIONS)]
    return "\n".join(lines) + "\n"
