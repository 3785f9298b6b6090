"""Running protocols: phases with durations and speeds relative to vIAT.

A :class:`Protocol` is a list of :class:`Step` (start, duration, fraction of vIAT, phase name).
The three protocols of the reference study ship in ``irtrepro/data/protocols.yaml``; a manifest
may define its own in the same YAML shape.

Examples
--------
>>> from irtrepro.protocols import default_protocols
>>> con = default_protocols()["CON"]
>>> con.duration_s
2760.0
>>> round(float(con.speed([0, 700], viat=15.0)[1]), 2)
14.25
>>> con.phase([0, 700, 2500]).tolist()
['warmup', 'steady', 'recovery']
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from irtrepro.errors import ProtocolError


@dataclass(frozen=True)
class Step:
    """One constant-speed step: starts at ``start_s`` (s), lasts ``duration_s`` (s)."""

    phase: str
    start_s: float
    duration_s: float
    fraction: float  # speed as a fraction of vIAT


@dataclass(frozen=True)
class Protocol:
    """A running protocol: consecutive steps grouped into named phases."""

    name: str
    steps: tuple[Step, ...]
    description: str = ""

    @property
    def duration_s(self) -> float:
        """Total duration (s)."""
        last = self.steps[-1]
        return float(last.start_s + last.duration_s)

    @property
    def phases(self) -> list[str]:
        """Phase names in order of first appearance."""
        return list(dict.fromkeys(s.phase for s in self.steps))

    def phase_bounds(self) -> dict[str, tuple[float, float]]:
        """``{phase: (start_s, end_s)}`` of each phase."""
        out: dict[str, tuple[float, float]] = {}
        for s in self.steps:
            lo, hi = out.get(s.phase, (s.start_s, s.start_s))
            out[s.phase] = (min(lo, s.start_s), max(hi, s.start_s + s.duration_s))
        return out

    def _index(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        starts = np.array([s.start_s for s in self.steps])
        idx = np.searchsorted(starts, t, side="right") - 1
        return np.where((t < 0) | (t >= self.duration_s) | np.isnan(t), -1, idx)

    def fraction(self, t) -> np.ndarray:
        """Speed as a fraction of vIAT at times ``t`` (s); NaN outside the protocol."""
        idx = self._index(t)
        frac = np.array([s.fraction for s in self.steps] + [np.nan])
        return frac[idx]

    def speed(self, t, viat: float) -> np.ndarray:
        """Treadmill speed (km/h) at times ``t`` (s) for a runner with ``viat`` (km/h)."""
        return self.fraction(t) * float(viat)

    def phase(self, t) -> np.ndarray:
        """Phase name at times ``t`` (s); ``""`` outside the protocol."""
        idx = self._index(t)
        names = np.array([s.phase for s in self.steps] + [""], dtype=object)
        return names[idx].astype(str)

    def mean_fraction(self) -> float:
        """Time-weighted mean speed as a fraction of vIAT."""
        d = np.array([s.duration_s for s in self.steps])
        f = np.array([s.fraction for s in self.steps])
        return float((d * f).sum() / d.sum())


def protocol_from_dict(name: str, spec: dict, where: str = "") -> Protocol:
    """Build a :class:`Protocol` from its YAML mapping; errors name ``where`` (the YAML path)."""
    where = where or f"protocols.{name}"
    if not isinstance(spec, dict) or not isinstance(spec.get("phases"), list) or not spec["phases"]:
        raise ProtocolError(f"{where}: expected a mapping with a non-empty list 'phases'")
    steps: list[Step] = []
    t = 0.0
    for i, ph in enumerate(spec["phases"]):
        here = f"{where}.phases[{i}]"
        if not isinstance(ph, dict) or "name" not in ph:
            raise ProtocolError(f"{here}: expected a mapping with 'name'")
        if "steps" in ph:
            repeat = ph.get("repeat", 1)
            if not isinstance(repeat, int) or repeat < 1:
                raise ProtocolError(f"{here}.repeat: expected a positive integer, got {repeat!r}")
            items = [(f"{here}.steps[{j}]", st) for j, st in enumerate(ph["steps"])] * repeat
        else:
            items = [(here, ph)]
        for loc, st in items:
            try:
                dur, frac = float(st["duration_s"]), float(st["speed"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ProtocolError(
                    f"{loc}: expected numbers 'duration_s' (s) and 'speed' (fraction of vIAT)"
                ) from exc
            if not dur > 0:
                raise ProtocolError(f"{loc}.duration_s: expected > 0 s, got {dur}")
            if not 0 <= frac <= 2.5:
                raise ProtocolError(f"{loc}.speed: expected a fraction of vIAT in [0, 2.5], got {frac}")
            steps.append(Step(str(ph["name"]), t, dur, frac))
            t += dur
    return Protocol(name, tuple(steps), str(spec.get("description", "")))


def load_protocols(source: str | Path | dict) -> dict[str, Protocol]:
    """Read protocols from a YAML file or an already parsed mapping ``{name: spec}``."""
    if isinstance(source, dict):
        data, where = source, "protocols"
    else:
        path = Path(source)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ProtocolError(f"{path}: cannot read protocols: {exc}") from exc
        where = str(path)
    if not isinstance(data, dict) or not data:
        raise ProtocolError(f"{where}: expected a mapping of protocol names to definitions")
    return {str(k): protocol_from_dict(str(k), v, f"{where}:{k}") for k, v in data.items()}


@functools.cache
def default_protocols() -> dict[str, Protocol]:
    """The reference study's protocols CON, SI and IS (46 min, equal mean speed)."""
    text = resources.files("irtrepro").joinpath("data/protocols.yaml").read_text()
    return load_protocols(yaml.safe_load(text))
