"""Breathing phase (INH/EXH) and respiratory rate from face thermograms.

Public names are loaded on first use, so ``import irtrepro.breathing`` never imports torch.

- signal baseline: :func:`signal_baseline`, :func:`respiratory_rate`, :func:`bandpass`,
  :func:`locate_nostrils`, :func:`phase_from_signal` (:mod:`.signal`)
- data: :class:`ImageSet`, :func:`read_image_folder`, :func:`session_images`,
  :func:`manifest_images` (:mod:`.data`)
- BreathAI pipeline: :class:`BreathConfig`, :data:`ABLATION`, :func:`train`,
  :func:`predict_proba`, :class:`BreathModel` (:mod:`.train`)
- evaluation: :func:`run_ablation`, :func:`classification_metrics`, :func:`agreement`,
  :func:`baseline_labels`, :func:`rate_agreement` (:mod:`.evaluate`)
- rates: :func:`session_rates`, :func:`study_variables` (:mod:`.rates`)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "signal": ["signal_baseline", "respiratory_rate", "bandpass", "locate_nostrils",
               "phase_from_signal", "roi_signal"],
    "data": ["ImageSet", "read_image_folder", "session_images", "manifest_images",
             "face_crops"],
    "amt": ["network_input", "multi_otsu", "amt_channels", "to_grey", "to_rgb"],
    "train": ["BreathConfig", "ABLATION", "train", "predict_proba", "BreathModel"],
    "evaluate": ["run_ablation", "classification_metrics", "agreement", "baseline_labels",
                 "rate_agreement", "true_rate_from_labels"],
    "rates": ["study_variables", "session_rates"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"irtrepro.breathing.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'irtrepro.breathing' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
