"""Declarative mixed-model specs: a dataclass or a YAML entry that analyses and the report fit.

A spec names the response and fixed part (patsy formula), the grouping factor, the random
part per group (intercept, slopes), variance components nested in the group (e.g. session
within subject) and the contrasts of the categorical factors. Statisticians add a model by
adding an entry; nothing else changes. See ``docs/stats.md``.

YAML form (a list, or a mapping ``models: [...]``)::

    - name: tnv_phase_protocol_slope
      formula: tnv ~ C(phase) * C(protocol)
      groups: subject
      re_formula: "1 + speed"          # random intercept and slope of speed per subject
      vc_formula: {session: "0 + C(session)"}
      contrasts: {phase: sum, protocol: treatment}
      reml: true
      description: TNV by phase and protocol, subject-specific speed slope
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from irtrepro.errors import OptionError, StatsError

__all__ = ["CONTRASTS", "ModelSpec", "default_specs", "dump_specs", "load_specs"]

#: contrast family name -> patsy coding
CONTRASTS = {"treatment": "Treatment", "sum": "Sum", "helmert": "Helmert", "poly": "Poly",
             "diff": "Diff"}


def _with_contrasts(formula: str, contrasts: dict[str, str]) -> str:
    """Rewrite ``C(var)`` and bare ``var`` in the right-hand side to ``C(var, Coding)``."""
    if not contrasts:
        return formula
    lhs, rhs = formula.split("~", 1)
    for var, family in contrasts.items():
        coding = CONTRASTS[family]
        pat_c = re.compile(r"C\(\s*" + re.escape(var) + r"\s*\)")
        if pat_c.search(rhs):
            rhs = pat_c.sub(f"C({var}, {coding})", rhs)
        else:
            rhs = re.sub(r"(?<![\w.(])" + re.escape(var) + r"(?![\w.(])", f"C({var}, {coding})",
                         rhs)
    return f"{lhs}~{rhs}"


@dataclass(frozen=True)
class ModelSpec:
    """One mixed model, declared.

    Attributes
    ----------
    name : str
        Identifier (file names, report headings).
    formula : str
        Response and fixed part, patsy: ``"tnv ~ C(phase) * C(protocol)"``.
    groups : str
        Grouping factor of the random effects.
    re_formula : str or None
        Random part per group: ``None``/``"1"`` intercept; ``"1 + speed"`` adds a slope.
    vc_formula : dict
        Variance components nested in ``groups``, e.g. ``{"session": "0 + C(session)"}``.
    contrasts : dict
        Coding of categorical factors: ``{"phase": "sum"}``; families in :data:`CONTRASTS`.
    reml : bool
    description : str
    """

    name: str
    formula: str
    groups: str = "subject"
    re_formula: str | None = None
    vc_formula: dict[str, str] = field(default_factory=dict)
    contrasts: dict[str, str] = field(default_factory=dict)
    reml: bool = True
    description: str = ""

    def __post_init__(self):
        if "~" not in self.formula:
            raise StatsError(f"model {self.name!r}: formula {self.formula!r} has no '~'")
        for var, fam in self.contrasts.items():
            if fam not in CONTRASTS:
                raise OptionError(f"model {self.name!r}: contrasts[{var!r}]={fam!r}; expected one "
                                  f"of {sorted(CONTRASTS)}")

    @property
    def full_formula(self) -> str:
        """The formula with the contrasts written in (what statsmodels receives)."""
        return _with_contrasts(self.formula, self.contrasts)

    def fit(self, data: Any, **kwargs):
        """Fit to ``data`` (DataFrame or Study) with :func:`irtrepro.stats.fit_mixed`."""
        from irtrepro.stats.mixed import fit_mixed

        return fit_mixed(self.full_formula, data, groups=self.groups,
                         re_formula=self.re_formula, vc_formula=self.vc_formula or None,
                         reml=self.reml, name=self.name, **kwargs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, entry: dict, where: str = "") -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(entry) - known
        if unknown:
            raise StatsError(f"{where}model spec has unknown keys {sorted(unknown)}; expected "
                             f"{sorted(known)}")
        for key in ("name", "formula"):
            if key not in entry:
                raise StatsError(f"{where}model spec lacks {key!r}")
        entry = dict(entry)
        entry["vc_formula"] = dict(entry.get("vc_formula") or {})
        entry["contrasts"] = dict(entry.get("contrasts") or {})
        return cls(**entry)


def load_specs(source: str | Path) -> list[ModelSpec]:
    """Read model specs from a YAML file (or YAML text): a list, or ``{models: [...]}``."""
    import yaml

    text = source
    where = "<text>"
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source
                                    and Path(source).suffix in (".yaml", ".yml")):
        path = Path(source)
        if not path.is_file():
            raise StatsError(f"{path}: model spec file not found")
        text = path.read_text()
        where = str(path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StatsError(f"{where}: not valid YAML: {exc}") from exc
    if isinstance(doc, dict) and "models" in doc:
        doc = doc["models"]
    if not isinstance(doc, list):
        raise StatsError(f"{where}: expected a list of model specs (or 'models: [...]')")
    specs = [ModelSpec.from_dict(e, f"{where}: models[{i}]: ") if isinstance(e, dict) else
             _bad_entry(where, i) for i, e in enumerate(doc)]
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise StatsError(f"{where}: duplicate model names {sorted(dup)}")
    return specs


def _bad_entry(where: str, i: int):
    raise StatsError(f"{where}: models[{i}] is not a mapping")


def dump_specs(specs: list[ModelSpec]) -> str:
    """YAML text of ``specs`` (round-trips through :func:`load_specs`)."""
    import yaml

    return yaml.safe_dump([s.to_dict() for s in specs], sort_keys=False)


def default_specs() -> list[ModelSpec]:
    """The study's default models of TNV (phase means per subject and session).

    1. ``tnv_phase_protocol``: ``tnv ~ C(phase) * C(protocol)``, random intercept per subject.
    2. ``tnv_phase_protocol_session``: as 1, plus a session-within-subject variance component.
    3. ``tnv_speed_slope``: ``tnv ~ speed * C(protocol)`` with a random intercept and a random
       slope of speed per subject (the example of adding a random slope).
    """
    return [
        ModelSpec(
            name="tnv_phase_protocol",
            formula="tnv ~ C(phase) * C(protocol)",
            groups="subject",
            description="TNV by phase and protocol; random intercept per subject",
        ),
        ModelSpec(
            name="tnv_phase_protocol_session",
            formula="tnv ~ C(phase) * C(protocol)",
            groups="subject",
            vc_formula={"session": "0 + C(session)"},
            description="as tnv_phase_protocol, plus session nested in subject",
        ),
        ModelSpec(
            name="tnv_speed_slope",
            formula="tnv ~ speed * C(protocol)",
            groups="subject",
            re_formula="1 + speed",
            description="TNV against running speed; subject-specific intercept and speed slope",
        ),
    ]
