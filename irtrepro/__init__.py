"""irtrepro: reproducibility studies with deep-learning-assisted infrared thermography.

Subpackages (imported on demand; ``import irtrepro`` stays light and never imports torch):

- ``irtrepro.manifest``  study manifest: schema, validation, checksums
- ``irtrepro.protocols`` running protocols and phases relative to vIAT
- ``irtrepro.study``     the Study dataset: validate, save, open
- ``irtrepro.sync``      session clock, resampling, phase labels, Study assembly
- ``irtrepro.io``        device readers (thermal, cpet, hr, core) behind a registry
- ``irtrepro.synth``     synthetic study with planted answers
- ``irtrepro.vision``    U-Net segmentation (segmentation-models-pytorch)
- ``irtrepro.features``  skin-temperature metrics (TNV, TP, TV, entropy, ...)
- ``irtrepro.breathing`` breathing phase and respiratory rate from face thermograms
- ``irtrepro.keypoints`` COCO keypoints in low-resolution thermal frames, gait features
- ``irtrepro.stats``     reliability, agreement, correlation, mixed models
- ``irtrepro.plots``     figures from results
- ``irtrepro.report``    builds reports/
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "manifest", "protocols", "study", "sync", "io", "synth", "vision", "features",
    "breathing", "keypoints", "stats", "plots", "report", "errors",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"irtrepro.{name}")
    raise AttributeError(f"module 'irtrepro' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
