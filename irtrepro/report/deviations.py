"""Deviations from the papers, per model: the report's table of what each paper does, what this
project does instead and why, beside what this run measured for that part.

The rows are the parts of the tables in ``docs/deviations.md`` (a test keeps the two in step);
the docs add the development ablations behind each choice. The report fills the last column
only from its own ``results.json`` figures, so a number on the page is one this run measured.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

__all__ = ["DEVIATIONS", "Deviation", "deviations_html", "evidence"]


@dataclass(frozen=True)
class Deviation:
    """One part of one model.

    ``evidence``: ``(group, name pattern)`` pairs of results.json figures that show what the
    part gives in a run; a pattern is a regular expression the whole name must match (the
    single split's keypoint names carry the configured models, e.g.
    ``AP student mobilenetv3 (thermal, distilled)``). Empty where no run measures the part.
    """

    model: str
    part: str
    paper: str
    here: str
    why: str
    evidence: tuple[tuple[str, str], ...] = ()


_B, _K, _S = "breathing", "keypoints", "segmentation"
_NB, _NK, _NS = (f"nested protocol: {m}" for m in (_B, _K, _S))

DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(_B, "backbone", "ImageNet ResNet50, transfer learning",
              "timm ResNet, BasicBlocks [1,1,1,1] (24-192 channels), 3x3 stride-1 stem, "
              "random init", "no downloads; a 7x7 stride-2 stem erases the 1-2 px nostrils",
              ((_B, "accuracy plain CNN"), (_B, "accuracy standard fine-tuning"))),
    Deviation(_B, "source task", "ImageNet classification",
              "rotation prediction (0/90/180/270 deg) on the training crops, 2 epochs",
              "no labels and no download needed",
              ((_B, "accuracy transfer learning, no preprocessing"),)),
    Deviation(_B, "AMT", "multi-level Otsu channels", "the same, k = 2", "-",
              ((_B, "accuracy standard fine-tuning"), (_B, r"accuracy \+ AMT"))),
    Deviation(_B, "KD-FT", "teacher -> student distillation",
              "teacher = ResNet fine-tuned on the same inputs; student 12-96 channels", "-",
              ((_B, r"accuracy \+ AMT"), (_B, r"accuracy \+ KD"))),
    Deviation(_B, "CRL", "contrastive loss",
              "margin 1.0 on L2-normalised embeddings, weight 0.5", "-"),
    Deviation(_B, "ensemble", "SVM + random forest",
              "SVM RBF + RF of 150 trees, SVM weight chosen on validation subjects", "-",
              ((_B, "accuracy full method"), (_NB, "accuracy"))),
    Deviation(_B, "not in the paper", "-", "per-recording feature scaling, flip test",
              "the dominant error on new faces is a per-subject decision offset",
              ((_B, "accuracy full method"),
               (_B, "accuracy full method, pooled feature scaling"),
               (_B, r"accuracy full method \+ AdaBN.*"),
               (_B, r"accuracy signal baseline \(ROI slope\)"),
               (_NB, "accuracy signal baseline"))),
    Deviation(_K, "teacher", "ViTPose-Base, pretrained, RGB",
              "small CNN trained here on synthetic RGB frames", "no pretrained ViTPose here",
              ((_K, r"AP teacher \(.*\)"), (_NK, "AP teacher"))),
    Deviation(_K, "student", "MobileNetV3-Small + frozen classic decoder",
              "the same; decoder 64 channels instead of 256", "2-core budget",
              ((_K, r"AP student \S+ \(thermal, distilled\)"), (_NK, "AP student"))),
    Deviation(_K, "distillation", "student trained on the teacher's outputs of unlabelled "
              "frames", "the same, beside a baseline supervised on the labelled frames alone",
              "what the teacher adds is measured against it",
              ((_K, r"AP student \S+ \(thermal, distilled\)"),
               (_K, r"AP baseline \S+ \(thermal, supervised.*\)"),
               (_NK, "AP student"), (_NK, "AP baseline"))),
    Deviation(_K, "β (latent vs heatmap loss)", "0.4", "0.4", "-"),
    Deviation(_K, "crops / heatmaps", "256x192 / 64x48", "64x48 / 16x12",
              "the thermal frames are 80x60: larger crops only interpolate"),
    Deviation(_K, "epochs", "500", "teacher 80, student 12, batch 16, warm-up + cosine",
              "CPU budget; batch 50 gave AP 0 (3 steps per epoch)"),
    Deviation(_K, "validation", "LOSO on 10 subjects",
              "report: 2 folds over 4 synthetic subjects; make evaluate: LOSO x 3 seeds",
              "CPU budget", ((_NK, "AP student"),)),
    Deviation(_K, "floor", "-", "constant pose: the mean training pose in each detection "
              "window", "what a model adds is measured against it",
              ((_K, r"AP constant pose.*"), (_NK, "AP constant"))),
    Deviation(_S, "networks", "two U-Nets (calf ROI, then vessels)",
              "two segmentation_models_pytorch U-Nets, resnet18 encoder at depth 3, "
              "encoder_weights=None", "no downloads; depth 3 trains fastest on CPU",
              ((_S, "Dice left_calf"), (_S, "Dice right_calf"), (_NS, "Dice left_calf"),
               (_NS, "Dice right_calf"))),
    Deviation(_S, "vessel input", "native",
              "enlarged 2x at 160x120; native 96-px crops at camera resolution",
              "perforators are 2-4 px across at 160x120",
              ((_S, "Dice vein"), (_S, "Dice perforator"), (_NS, "Dice vein"),
               (_NS, "Dice perforator"))),
    Deviation(_S, "calf network at camera resolution", "-",
              "whole frames average-pooled to about 160 px",
              "with 96-px crops it could not tell left from right"),
)


def evidence(row: Deviation, results: dict) -> list[dict]:
    """The figures of ``results`` (results.json) named by ``row.evidence``, in its order."""
    figs = results.get("figures") or []
    out = []
    for group, pattern in row.evidence:
        out += [f for f in figs if f["group"] == group and re.fullmatch(pattern, f["name"])
                and f["value"] is not None]
    return out


def _cell(f: dict) -> str:
    where = "nested" if f["group"].startswith("nested protocol") else "this split"
    spread = f.get("spread") or {}
    ci = (f" (95 % CI {spread['ci_low']:.3f}-{spread['ci_high']:.3f})"
          if spread.get("ci_low") is not None and spread.get("ci_high") is not None else "")
    return f"{f['name']}: {f['value']:.3f}{ci} [{where}]"


def deviations_html(results: dict) -> str:
    """HTML section (a heading, then one table per model), the last column filled from
    ``results`` (results.json) only."""
    parts = ['<h3 id="deviations">Deviations from the papers</h3>'
             '<p class="caption">What each paper does, what this project does instead and why '
             "(no pretrained weights can be downloaded here, the RGB teacher and every image "
             "are synthetic, training runs on CPUs). The last column holds only figures this "
             "run measured: [this split] from the report's own split and seed, [nested] from "
             "make evaluate's folds x seeds where it has run; the development ablations behind "
             "each choice are in docs/deviations.md. A part with no figure was not measured "
             "alone in this run.</p>"]
    for model in dict.fromkeys(d.model for d in DEVIATIONS):
        rows = []
        for d in (d for d in DEVIATIONS if d.model == model):
            found = evidence(d, results)
            measured = ("<br>".join(html.escape(_cell(f)) for f in found) if found
                        else "not measured in this run")
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>"
                                         for c in (d.part, d.paper, d.here, d.why))
                        + f"<td>{measured}</td></tr>")
        head = "".join(f"<th>{h}</th>" for h in ("part", "paper", "here", "why",
                                                   "this run"))
        parts.append(f"<h4>{html.escape(model)}</h4><table><thead><tr>{head}</tr></thead>"
                     f"<tbody>{''.join(rows)}</tbody></table>")
    return "".join(parts)
