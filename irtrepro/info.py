"""Versions, device and manifest summary (like ``mne.sys_info``, but never online)."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
from pathlib import Path

PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "pingouin", "xarray", "zarr", "dask",
            "h5netcdf", "torch", "torchvision", "segmentation-models-pytorch", "timm",
            "scikit-learn", "matplotlib", "flyr", "imagecodecs", "fitdecode", "openpyxl")


def versions() -> dict[str, str]:
    """Installed versions of irtrepro and the packages it uses (``"not installed"``)."""
    out = {"irtrepro": package_version("irtrepro"), "python": platform.python_version()}
    for p in PACKAGES:
        out[p] = package_version(p)
    return out


def package_version(name: str) -> str:
    """Installed version of a distribution, or ``"not installed"``."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`), or
    ``"unknown"``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu(torch=None) -> str:
    """``<model>[, <vector instructions torch's kernels use>]; <n> cores``."""
    simd = ""
    if torch is not None:
        try:
            simd = f", {torch.backends.cpu.get_cpu_capability()}"
        except AttributeError:  # torch < 2.1
            pass
    return f"{cpu_model()}{simd}; {os.cpu_count()} cores"


def machine() -> str:
    """The compute device without its thread setting: ``cuda (<name>)``, or on a CPU its model,
    the vector instructions torch's kernels use and the cores (the same training differs in
    its last digits between machines whose kernels differ)."""
    try:
        import torch
    except ImportError:
        return f"cpu ({_cpu()}; torch not installed)"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({_cpu(torch)})"


def device() -> str:
    """:func:`machine`, on a CPU with torch's thread count (without importing torch when it is
    absent)."""
    try:
        import torch
    except ImportError:
        return machine()
    if torch.cuda.is_available():
        return machine()
    return f"cpu ({_cpu(torch)}, torch threads {torch.get_num_threads()})"


def sys_info(manifest: str | os.PathLike | None = None) -> str:
    """Text block: platform, versions, device, git commit, manifest summary."""
    from irtrepro.study import git_commit

    lines = [f"platform: {platform.platform()}", f"git commit: {git_commit()}",
             f"device: {device()}", "versions:"]
    lines += [f"  {k}: {v}" for k, v in versions().items()]
    if manifest is not None:
        path = Path(manifest)
        if path.exists():
            from irtrepro.manifest import load_manifest

            m = load_manifest(path)
            kinds = sorted({k for s in m.sessions for k in s.files})
            lines += [f"manifest: {m.path}", f"  study: {m.name}",
                      f"  sha256: {m.sha256}",
                      f"  subjects: {len(m.subjects)}, sessions: {len(m.sessions)}",
                      f"  protocols: {sorted({s.protocol for s in m.sessions})}",
                      f"  file kinds: {kinds}",
                      f"  synthetic: {'yes, seed ' + str(m.generator.get('seed')) if m.generator else 'no'}"]
        else:
            lines.append(f"manifest: {path} (not found)")
    return "\n".join(lines)
