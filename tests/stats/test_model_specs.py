"""ModelSpec: YAML round trip, contrasts written into the formula, bad specs."""

from __future__ import annotations

import pytest

from irtrepro.errors import OptionError, StatsError
from irtrepro.stats import ModelSpec, default_specs, dump_specs, load_specs

YAML = """
models:
  - name: tnv_slope
    formula: tnv ~ C(phase) * protocol
    groups: subject
    re_formula: "1 + speed"
    vc_formula: {session: "0 + C(session)"}
    contrasts: {phase: sum, protocol: treatment}
    description: random slope of speed
"""


def test_yaml_spec_with_random_slope_and_contrasts(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text(YAML)
    (spec,) = load_specs(path)
    assert spec.re_formula == "1 + speed"
    assert spec.vc_formula == {"session": "0 + C(session)"}
    assert spec.full_formula == "tnv ~ C(phase, Sum) * C(protocol, Treatment)"
    assert load_specs(YAML) == [spec]


def test_dump_and_load_round_trip():
    specs = default_specs()
    assert load_specs(dump_specs(specs)) == specs
    assert any(s.re_formula == "1 + speed" for s in specs)


@pytest.mark.parametrize("text,match", [
    ("- {name: a}", "lacks 'formula'"),
    ("- {name: a, formula: y ~ x, colour: red}", "unknown keys"),
    ("- {name: a, formula: y ~ x}\n- {name: a, formula: y ~ z}", "duplicate model names"),
    ("name: a", "expected a list"),
    ("- {name: a, formula: y x}", "has no '~'"),
])
def test_bad_specs_are_named(text, match):
    with pytest.raises(StatsError, match=match):
        load_specs(text)


def test_unknown_contrast_family():
    with pytest.raises(OptionError, match="contrasts\\['phase'\\]='orthogonal'"):
        ModelSpec("a", "y ~ phase", contrasts={"phase": "orthogonal"})
