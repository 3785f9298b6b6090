"""Inference networks at a chosen numeric precision: float32 (the reference) or bfloat16.

bfloat16 inference folds each batch normalisation into the convolution before it and runs
weights and activations in bfloat16. On CPUs with bfloat16 matrix instructions (Intel AMX or
AVX512-BF16) oneDNN then runs the U-Nets' convolutions several times faster than in float32;
on CPUs without them bfloat16 is emulated and slower, so ``"auto"`` picks it only where the
instructions are there (or on a CUDA device that supports bfloat16). The masks it gives are
held to the float32 masks by a test (Dice >= 0.99 per class on held-out frames of trained
networks); the speed figures are in docs/thermal_pipeline.md.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from irtrepro.errors import OptionError

#: the precisions :func:`inference_network` accepts
PRECISIONS = ("float32", "bfloat16", "auto")

#: precision of the segmentation networks at inference unless told: bfloat16 where the
#: device computes it natively, else float32
DEFAULT_PRECISION = "auto"


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: the flags are unknown, "auto" keeps float32
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bfloat16(dev) -> bool:
    """Whether ``dev`` computes bfloat16 convolutions natively (CUDA with bf16 support; a CPU
    with AMX-BF16 or AVX512-BF16)."""
    import torch

    dev = torch.device(dev)
    if dev.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return bool({"amx_bf16", "avx512_bf16"} & _cpu_flags())


def resolve_precision(precision: str, dev) -> str:
    """``"float32"`` or ``"bfloat16"``: ``precision`` itself, or what ``"auto"`` picks on ``dev``.

    Raises
    ------
    OptionError
        For a name outside :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise OptionError(f"precision={precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(dev) else "float32"
    return precision


def fuse_conv_bn(model):
    """A copy of an eval-mode network with every BatchNorm2d that directly follows a Conv2d
    folded into that convolution (same outputs up to rounding)."""
    import torch.nn as nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    modules = dict(model.named_modules())
    prev = None
    for name, mod in list(model.named_modules()):
        if isinstance(mod, nn.BatchNorm2d) and prev is not None and isinstance(prev[1],
                                                                                nn.Conv2d):
            conv_name, conv = prev
            for target, new in ((conv_name, fuse_conv_bn_eval(conv, mod)),
                                (name, nn.Identity())):
                parent, _, attr = target.rpartition(".")
                setattr(modules[parent] if parent else model, attr, new)
        prev = (name, mod)
    return model


def inference_network(ck, dev, precision: str = "float32"):
    """The network of a checkpoint, ready for inference on ``dev`` at ``precision``.

    Parameters
    ----------
    ck : irtrepro.vision.models.Checkpoint
    dev : torch.device or str
    precision : {"float32", "bfloat16", "auto"}
        See the module docstring; :func:`irtrepro.vision.infer.forward` feeds the network
        input of its dtype and returns float32 logits either way.

    Returns
    -------
    torch.nn.Module
        In eval mode, channels-last.
    """
    import torch

    model = ck.build()
    if resolve_precision(precision, dev) == "bfloat16":
        model = fuse_conv_bn(model).to(torch.bfloat16)
    return model.to(dev, memory_format=torch.channels_last)


def network_dtype(model):
    """The dtype of a network's weights (what its input must be)."""
    return next(model.parameters()).dtype


def precision_of(model) -> str:
    """``"bfloat16"`` or ``"float32"``: the precision a network was built at."""
    import torch

    return "bfloat16" if network_dtype(model) == torch.bfloat16 else "float32"
