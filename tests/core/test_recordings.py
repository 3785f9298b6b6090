"""A manifest's thermal entry as a zarr frame store: camera files converted once (the reader
code of ``thermal convert``), cached by sha256, never a partial store taken as done."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

import irtrepro.io.zarr_store as zs
from irtrepro.cli import main
from irtrepro.errors import FormatError
from irtrepro.io import read
from irtrepro.io.zarr_store import open_frames, quantisation_bound
from irtrepro.manifest import load_manifest, sha256_path
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


def test_a_changed_source_never_resumes_and_its_stale_folder_goes(lab, tmp_path, monkeypatch):
    other_lab = generate_lab_study(
        tmp_path / "other", dataclasses.replace(
            CFG, physiology=dataclasses.replace(CFG.physiology, seed=7)), n_jobs=1)
    entry = lab.files["thermal"]
    changed = load_manifest(other_lab).sessions[0].files["thermal"]
    rec = tmp_path / "src" / "rec.seq"
    rec.parent.mkdir()
    shutil.copyfile(entry.path, rec)
    mine = dataclasses.replace(entry, path=rec, sha256=None)
    cache = tmp_path / "cache"
    real, calls = zs._encode, []

    def interrupted(block, *a):
        calls.append(block.shape[0])
        if len(calls) % 3 == 0:
            raise KeyboardInterrupt  # a Ctrl-C in the third chunk of each conversion
        return real(block, *a)

    monkeypatch.setattr(zs, "_encode", interrupted)
    for e in (mine, entry):  # this source's conversion and another source's, both cut short
        with pytest.raises(KeyboardInterrupt):
            frame_store(e, cache, chunk_frames=2)
    progress = {p["source"]: (folder, p) for folder in cache.glob(".*.resume")
                for p in [zs.read_progress(folder)]}
    assert set(progress) == {str(rec.resolve()), str(entry.path.resolve())}
    stale, p = progress[str(rec.resolve())]
    assert p["source_sha256"] == sha256_path(rec) and p["next"] == 4
    shutil.copyfile(changed.path, rec)  # the recording is replaced by another one
    calls.clear()
    monkeypatch.setattr(zs, "_encode", lambda block, *a: calls.append(block.shape[0])
                        or real(block, *a))
    fs = frame_store(mine, cache, chunk_frames=2)
    assert fs.converted and fs.sha256 == sha256_path(changed.path)
    assert calls == [2, 2, 2, 2, 2, 1]  # all 11 frames of the new file decoded
    assert not stale.exists()
    # the other source's interrupted conversion is kept, and still resumes
    kept = progress[str(entry.path.resolve())][0]
    assert [f for f, _ in progress.values() if f.exists()] == [kept]
    calls.clear()
    assert frame_store(entry, cache, chunk_frames=2).converted and calls == [2, 2, 2, 1]
    np.testing.assert_array_equal(open_frames(fs.path).values,
                                  open_frames(frame_store(changed, tmp_path / "fresh").path).values)


def test_a_resume_folder_of_another_source_sha256_is_not_resumed(lab, tmp_path, monkeypatch):
    frames = read("thermal", lab.files["thermal"].path, "flir-seq")
    real, calls = zs._encode, []

    def interrupted(block, *a):
        calls.append(block.shape[0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(block, *a)

    monkeypatch.setattr(zs, "_encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        zs.write_frames(tmp_path / "a.zarr", frames.assign_attrs(source_sha256="1" * 64),
                        chunk_frames=2, resume=True)
    calls.clear()
    monkeypatch.setattr(zs, "_encode", lambda block, *a: calls.append(block.shape[0])
                        or real(block, *a))
    zs.write_frames(tmp_path / "a.zarr", frames.assign_attrs(source_sha256="2" * 64),
                    chunk_frames=2, resume=True)
    assert calls == [2, 2, 2, 2, 2, 1]
    assert open_frames(tmp_path / "a.zarr").attrs["source_sha256"] == "2" * 64
