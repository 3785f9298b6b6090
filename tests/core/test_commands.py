"""Every CLI subcommand parses ``--help``; ``irtrepro info`` prints versions (offline)."""

from __future__ import annotations

import pytest

from irtrepro import cli, info

COMMANDS = sorted(m.NAME for m in cli._command_modules())


def test_the_known_subcommands_are_discovered():
    assert {"build", "info", "report", "synth", "manifest"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: irtrepro {name}")


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert "-v" in out and "progress bars" in out


def test_info_prints_versions(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(info, "device", lambda: "cpu (test)")  # torch stays unimported
    assert cli.main(["info", "--manifest", str(tmp_path / "absent.yaml")]) == 0
    out = capsys.readouterr().out
    import numpy
    import xarray

    assert f"  numpy: {numpy.__version__}" in out
    assert f"  xarray: {xarray.__version__}" in out
    assert "irtrepro: " in out and "device: cpu (test)" in out
    assert f"manifest: {tmp_path / 'absent.yaml'} (not found)" in out


def test_versions_and_package_version():
    v = info.versions()
    assert set(info.PACKAGES) <= set(v)
    assert info.package_version("no-such-distribution-xyz") == "not installed"


def test_sys_info_reads_a_manifest(tmp_path):
    from irtrepro.synth.physiology import SynthConfig
    from irtrepro.synth.study import GeneratorConfig, generate_study

    cfg = GeneratorConfig(physiology=SynthConfig(n_subjects=2, seed=1), kinds=("hr",))
    path = generate_study(tmp_path / "data", cfg, manifest_path=tmp_path / "study.yaml")
    text = info.sys_info(path)
    assert "subjects: 2" in text and "file kinds: ['hr']" in text and "synthetic: yes" in text
