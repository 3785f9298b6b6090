import numpy as np
import pytest

from irtrepro.errors import ProtocolError
from irtrepro.protocols import default_protocols, load_protocols


def test_reference_protocols_have_equal_duration_and_mean_speed():
    protos = default_protocols()
    assert sorted(protos) == ["CON", "IS", "SI"]
    for p in protos.values():
        assert p.duration_s == 46 * 60
        assert p.mean_fraction() == pytest.approx(protos["CON"].mean_fraction(), abs=1e-12)
        assert p.phases[0] == "warmup" and p.phases[-1] == "recovery"


def test_speed_and_phase_follow_the_steps():
    si = default_protocols()["SI"]
    t = np.array([0, 599, 600, 1499, 1500, 1589, 1590, 2399, 2400, 2759, 2760, -1])
    expected_frac = [0.7, 0.7, 0.95, 0.95, 1.2, 1.2, 0.7, 0.7, 0.6, 0.6, np.nan, np.nan]
    np.testing.assert_allclose(si.speed(t, viat=10.0), np.array(expected_frac) * 10.0)
    assert si.phase(t).tolist() == ["warmup", "warmup", "steady", "steady", "intervals",
                                    "intervals", "intervals", "intervals", "recovery",
                                    "recovery", "", ""]
    assert si.phase_bounds()["intervals"] == (1500.0, 2400.0)


def test_protocol_from_yaml_mapping_and_errors():
    protos = load_protocols({"X": {"phases": [
        {"name": "a", "duration_s": 60, "speed": 0.5},
        {"name": "b", "repeat": 2, "steps": [{"duration_s": 10, "speed": 1.0},
                                             {"duration_s": 20, "speed": 0.5}]}]}})
    assert protos["X"].duration_s == 120
    assert len(protos["X"].steps) == 5
    with pytest.raises(ProtocolError, match=r"X.phases\[0\].duration_s: expected > 0"):
        load_protocols({"X": {"phases": [{"name": "a", "duration_s": 0, "speed": 0.5}]}})
    with pytest.raises(ProtocolError, match=r"X.phases\[0\]: expected numbers"):
        load_protocols({"X": {"phases": [{"name": "a", "speed": 0.5}]}})
    with pytest.raises(ProtocolError, match="non-empty list 'phases'"):
        load_protocols({"X": {"phases": []}})
