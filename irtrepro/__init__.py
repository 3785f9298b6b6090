"""irtrepro: reproducibility studies with deep-learning-assisted infrared thermography.

The front door::

    import irtrepro as irt
    ds = irt.open_study("data/study.nc")     # a Study: xarray.Dataset (subject, session, time)
    ds.irt.phase_means()                      # the ``.irt`` accessor, registered here
    irt.stats.icc(ds.irt.summary())           # subpackages load on first use

``import irtrepro`` loads numpy and xarray (for the accessor) and never imports torch.

Subpackages (imported on demand, as attributes or with ``import irtrepro.<name>``):

- ``irtrepro.manifest``  study manifest: schema, validation, checksums
- ``irtrepro.protocols`` running protocols and phases relative to vIAT
- ``irtrepro.study``     the Study dataset: validate, save, open, the ``.irt`` accessor
- ``irtrepro.summaries`` phase means, window summaries, ΔTNV, core-to-skin gradient
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
- ``irtrepro.info``      versions and device (``irtrepro info``)
- ``irtrepro.errors``    exceptions and warnings
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# the Study functions and the ``.irt`` accessor (numpy + xarray only)
from irtrepro.study import example_study, open_study, save_study, validate_study  # noqa: E402

__all__ = ["__version__", "example_study", "open_study", "save_study", "validate_study"]

_SUBMODULES = {
    "manifest", "protocols", "study", "summaries", "sync", "io", "synth", "vision", "features",
    "breathing", "keypoints", "stats", "plots", "report", "errors", "info", "pipeline", "cli",
    "commands",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"irtrepro.{name}")
    raise AttributeError(f"module 'irtrepro' has no attribute {name!r}; subpackages are "
                         f"{sorted(_SUBMODULES)}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
