"""A manifest's thermal entry as a zarr frame store: camera files converted once (the reader
code of ``thermal convert``), cached by sha256, never a partial store taken as done."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import irtrepro.io.zarr_store as zs
from irtrepro.cli import main
from irtrepro.errors import FormatError
from irtrepro.io import read
from irtrepro.io.zarr_store import open_frames, quantisation_bound
from irtrepro.manifest import load_manifest
from irtrepro.recordings import frame_store
from irtrepro.synth.lab import LabConfig, generate_lab_study
from irtrepro.synth.physiology import SynthConfig

CFG = LabConfig(physiology=SynthConfig(n_subjects=1, sessions=(("CON", "CON", 1),)),
                shape=(32, 32), frame_interval_s=30.0, duration_s=240.0, lead_s=60.0,
                annotated_per_subject=0, kinds=("hr",))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    m = load_manifest(generate_lab_study(out, CFG, n_jobs=1))
    return m.sessions[0]


def test_seq_entry_is_converted_once_with_the_readers_frames(lab, tmp_path, monkeypatch):
    entry = lab.files["thermal"]
    fs = frame_store(entry, tmp_path)
    assert fs.converted and fs.format == "flir-seq" and fs.sha256 == entry.sha256
    assert fs.path.parent == tmp_path and entry.sha256[:16] in fs.path.name
    got, want = open_frames(fs.path), read("thermal", entry.path, "flir-seq")
    np.testing.assert_allclose(got.values, want.values, atol=quantisation_bound() + 1e-6)
    np.testing.assert_array_equal(got["time"].values, want["time"].values)
    assert got.attrs["start_time"] == want.attrs["start_time"] != ""
    assert got.attrs["source_sha256"] == entry.sha256
    # the second time nothing is decoded
    monkeypatch.setattr("irtrepro.io.convert.convert_recording",
                        lambda *a, **k: pytest.fail("converted again"))
    again = frame_store(entry, tmp_path)
    assert again.path == fs.path and not again.converted


def test_same_store_as_thermal_convert(lab, tmp_path):
    entry = lab.files["thermal"]
    fs = frame_store(entry, tmp_path / "cache")
    assert main(["thermal", "convert", str(entry.path), str(tmp_path / "cli.zarr")]) == 0
    np.testing.assert_array_equal(open_frames(tmp_path / "cli.zarr").values,
                                  open_frames(fs.path).values)


def test_reader_options_make_another_store(lab, tmp_path):
    entry = lab.files["thermal"]
    a = frame_store(entry, tmp_path)
    b = frame_store(dataclasses.replace(entry, options={"emissivity": 0.95}), tmp_path)
    assert a.path != b.path and b.converted
    assert not np.allclose(open_frames(a.path).values, open_frames(b.path).values)
    # sync options are not reader options: the same store
    c = frame_store(dataclasses.replace(entry, options={"offset_s": -47.0}), tmp_path)
    assert c.path == a.path and not c.converted


def test_interrupted_conversion_leaves_no_store_and_resumes(lab, tmp_path, monkeypatch):
    entry = lab.files["thermal"]
    real, calls = zs._encode, []

    def counted(block, *a):
        calls.append(block.shape[0])
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a user's Ctrl-C in the third chunk
        return real(block, *a)

    monkeypatch.setattr(zs, "_encode", counted)
    with pytest.raises(KeyboardInterrupt):
        frame_store(entry, tmp_path, chunk_frames=2)
    assert not list(tmp_path.glob("*.zarr"))      # no store taken as done
    assert len(list(tmp_path.glob(".*.resume"))) == 1
    calls.clear()
    monkeypatch.setattr(zs, "_encode", lambda block, *a: calls.append(block.shape[0])
                        or real(block, *a))
    fs = frame_store(entry, tmp_path, chunk_frames=2)
    # 11 frames in chunks of 2: chunks 0-1 were kept, the rerun encodes the other 4
    assert fs.converted and calls == [2, 2, 2, 1]
    assert not list(tmp_path.glob(".*.resume"))
    fresh = frame_store(entry, tmp_path / "fresh", chunk_frames=2)
    np.testing.assert_array_equal(open_frames(fs.path).values, open_frames(fresh.path).values)
    np.testing.assert_array_equal(open_frames(fs.path)["time"].values,
                                  open_frames(fresh.path)["time"].values)


def test_zarr_entry_is_its_own_store(lab, tmp_path):
    entry = lab.files["thermal"]
    assert main(["thermal", "convert", str(entry.path), str(tmp_path / "s.zarr")]) == 0
    z = dataclasses.replace(entry, path=tmp_path / "s.zarr", format="zarr", sha256=None)
    fs = frame_store(z, tmp_path / "cache")
    assert fs.path == tmp_path / "s.zarr" and not fs.converted and fs.format == "zarr"
    assert not (tmp_path / "cache").exists()


def test_missing_recording_is_named(lab, tmp_path):
    entry = dataclasses.replace(lab.files["thermal"], path=tmp_path / "gone.seq")
    with pytest.raises(FormatError, match="gone.seq: thermal recording not found"):
        frame_store(entry, tmp_path)
