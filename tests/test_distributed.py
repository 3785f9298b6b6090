"""``--scheduler``: segment and extract on a local scheduler with two workers equal a serial run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from irtrepro.distributed import open_client, parse_scheduler
from irtrepro.errors import OptionError

distributed = pytest.importorskip("distributed")
torch = pytest.importorskip("torch")


@pytest.mark.parametrize(("value", "expected"), [
    (None, ("serial", None)), ("local", ("local", 2)), ("local:3", ("local", 3)),
    ("tcp://10.0.0.5:8786", ("address", "tcp://10.0.0.5:8786")),
    ("node12:8786", ("address", "node12:8786"))])
def test_scheduler_values(value, expected):
    assert parse_scheduler(value) == expected


@pytest.mark.parametrize("value", ["local:0", "local:x", "nowhere", "missing/sched.json", 3])
def test_bad_scheduler_values_name_the_value(value):
    with pytest.raises(OptionError, match=f"scheduler={value!r}"):
        parse_scheduler(value)


@pytest.fixture(scope="module")
def cluster():
    # processes=True: torch's thread count is per process, and worker processes are what a
    # real cluster has; two single-threaded workers start in a few seconds here
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def session():
    from irtrepro.synth.thermogram import render_session
    from tests.synth.test_thermogram import make_truth

    return render_session(make_truth(46), shape=(48, 64), seed=0, frame_interval_s=1)


def _store(tmp_path, session, name):
    from irtrepro.io.thermal import write_frames

    return write_frames(tmp_path / name, session["frames"], chunk_frames=4)


def _masks(store):
    from irtrepro.io.thermal import open_frame_store

    ds = open_frame_store(store)
    return ds["roi"].values, ds["vessels"].values


def test_segment_and_extract_on_two_workers_equal_serial(tmp_path, session, cluster):
    from irtrepro.features.extract import extract_store
    from irtrepro.vision.infer import segment_store
    from tests.vision.test_infer_chunked import _checkpoints

    cks = _checkpoints(0)
    serial, par = _store(tmp_path, session, "a.zarr"), _store(tmp_path, session, "b.zarr")
    kw = {"batch_size": 3, "threads": 1, "progress": False, "chunk": 5,
          "dev": torch.device("cpu")}
    segment_store(serial, *cks, **kw)
    segment_store(par, *cks, scheduler=cluster, **kw)
    r0, v0 = _masks(serial)
    r1, v1 = _masks(par)
    # meaningful only if both calves and some vessels were found, over several chunks (12 frames)
    assert {1, 2} <= set(np.unique(r0)) and (v0 > 0).any()
    assert np.array_equal(r0, r1) and np.array_equal(v0, v1)
    assert not (tmp_path / ".b.zarr.segment.part").exists()

    # each worker built the networks once for its chunks (4 chunks of 12 frames, two workers)
    def built():
        from irtrepro.distributed import _WORKER_CACHE

        return sorted(k.split(":")[0] for k in _WORKER_CACHE)

    with distributed.Client(cluster) as c:
        per_worker = c.run(built)
    assert len(per_worker) == 2 and all(v in ([], ["segment"]) for v in per_worker.values())
    # the untrained networks' masks fail the quality checks (every second NaN), so the metrics
    # are compared on the ground-truth masks: 6 chunks of 8 frames over the two workers
    from irtrepro.io.thermal import write_frames

    truth = write_frames(tmp_path / "t.zarr", session["frames"], chunk_frames=4,
                         masks={"roi": session["roi"], "vessels": session["vessels"]})
    for per_frame in (False, True):
        a = extract_store(truth, chunk_frames=8, per_frame=per_frame)
        b = extract_store(truth, chunk_frames=8, per_frame=per_frame, scheduler=cluster)
        xr.testing.assert_identical(a, b)
        # most seconds hold metrics (the renderer plants a few frames that fail the checks)
        assert np.isfinite(a["tnv_mean"].values).mean() > 0.8


def test_segment_on_a_cluster_resumes_the_chunks_done(tmp_path, session, cluster, monkeypatch):
    import irtrepro.vision.infer as inf
    from tests.vision.test_infer_chunked import _checkpoints

    cks = _checkpoints(0)
    kw = {"batch_size": 3, "threads": 1, "progress": False, "chunk": 5,
          "dev": torch.device("cpu")}
    ref = _store(tmp_path, session, "ref.zarr")
    inf.segment_store(ref, *cks, **kw)
    store = _store(tmp_path, session, "s.zarr")
    # stop the run after its first recorded chunk: the part folder keeps that chunk
    real = inf._write_json
    calls = []

    def stop(path, obj):
        real(path, obj)
        if obj.get("done"):
            calls.append(list(obj["done"]))
            raise RuntimeError("stopped")

    monkeypatch.setattr(inf, "_write_json", stop)
    with pytest.raises(RuntimeError, match="stopped"):
        inf.segment_store(store, *cks, scheduler=cluster, **kw)
    monkeypatch.setattr(inf, "_write_json", real)
    state = json.loads((tmp_path / ".s.zarr.segment.part" / "state.json").read_text())
    assert len(state["done"]) == 1
    submitted = []
    orig_submit = distributed.Client.submit

    def count(self, fn, *a, **k):
        submitted.append(a[2])
        return orig_submit(self, fn, *a, **k)

    monkeypatch.setattr(distributed.Client, "submit", count)
    inf.segment_store(store, *cks, scheduler=cluster, **kw)
    # the rerun segmented only the chunks not done (46 frames in steps of 12: 4 chunks)
    assert sorted(submitted) == sorted({0, 12, 24, 36} - set(state["done"]))
    r0, v0 = _masks(ref)
    r1, v1 = _masks(store)
    assert np.array_equal(r0, r1) and np.array_equal(v0, v1)


def test_local_string_starts_and_closes_its_cluster():
    with open_client("local:2") as client:
        assert len(client.scheduler_info()["workers"]) == 2
        address = client.scheduler.address
    assert client.status == "closed"
    assert address.startswith("tcp://")


def test_convert_several_recordings_on_two_workers_equals_serial(tmp_path, cluster):
    import zarr

    from irtrepro.cli import main
    from irtrepro.io.convert import convert_recordings

    rng = np.random.default_rng(0)
    pairs = []
    for k in range(3):
        np.save(tmp_path / f"r{k}.npy", rng.uniform(20, 35, (10 + k, 6, 8)).astype(np.float32))
        pairs.append((tmp_path / f"r{k}.npy", tmp_path / f"r{k}.zarr"))
    serial = convert_recordings(pairs, fps=5.0, chunk_frames=4)
    par = convert_recordings([(a, tmp_path / f"p{k}.zarr") for k, (a, _) in enumerate(pairs)],
                             scheduler=cluster, fps=5.0, chunk_frames=4)
    assert [f for f, _ in serial] == [f for f, _ in par] == ["npy"] * 3
    for (_, a), (_, b) in zip(serial, par, strict=True):
        za, zb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
        for name in ("frames", "time"):
            assert np.array_equal(za[name][:], zb[name][:])  # the stored counts, bit for bit
    # the command: FILE OUT pairs; an odd one out is named
    assert main(["-q", "thermal", "convert", str(pairs[0][0]), str(tmp_path / "c0.zarr"),
                 str(pairs[1][0]), str(tmp_path / "c1.zarr"), "--fps", "5"]) == 0
    assert (tmp_path / "c1.zarr").is_dir()
    assert main(["-q", "thermal", "convert", str(pairs[0][0]), str(tmp_path / "c2.zarr"),
                 str(pairs[1][0]), "--fps", "5"]) == 2


def test_report_sessions_on_two_workers_equal_serial(tmp_path, session, cluster):
    from irtrepro.io.thermal import write_masks
    from irtrepro.vision.pipeline import SessionJob, session_results
    from tests.vision.test_infer_chunked import _checkpoints
    from tests.vision.test_vision import _assert_same_result

    cks = _checkpoints(0)
    paths = [str(_store(tmp_path, session, f"s{k}.zarr")) for k in range(2)]
    write_masks(paths[1], roi=session["roi"], vessels=session["vessels"], progress=False)
    jobs = [SessionJob(paths[0], signal=True, chunk=12),
            SessionJob(paths[1], masks=paths[1], picks=(1, 30), example=True, chunk=12),
            SessionJob(str(tmp_path / "missing.zarr"))]
    models = tuple(ck.build() for ck in cks)
    serial = list(session_results(jobs, *cks, models, 1))
    par = list(session_results(jobs, *cks, models, 1, scheduler=cluster))
    assert len(par) == 3
    assert serial[1].counts and serial[1].metric_errors
    for r0, r1 in zip(serial[:2], par[:2], strict=True):
        _assert_same_result(r0, r1)
    # a session that fails on a worker is reported as on a process here, not raised
    assert serial[2].error is not None and par[2].error == serial[2].error


def test_extract_command_on_a_scheduler_address_equals_serial(tmp_path, session, cluster):
    from irtrepro.cli import main
    from irtrepro.io.thermal import write_frames

    store = write_frames(tmp_path / "t.zarr", session["frames"], chunk_frames=4,
                         masks={"roi": session["roi"], "vessels": session["vessels"]})
    assert main(["-q", "extract", str(store), "--out", str(tmp_path / "a.nc"),
                 "--chunk-frames", "8"]) == 0
    assert main(["-q", "extract", str(store), "--out", str(tmp_path / "b.nc"),
                 "--chunk-frames", "8", "--scheduler", cluster.scheduler_address,
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    a, b = (xr.load_dataset(tmp_path / f"{k}.nc") for k in "ab")
    xr.testing.assert_identical(a, b)
    # every chunk was kept for a rerun: 46 frames in chunks of 8
    assert len(list((tmp_path / "cache").rglob("chunk_*.nc"))) == 6
    assert main(["-q", "extract", str(store), "--out", str(tmp_path / "c.nc"),
                 "--scheduler", "local:0"]) == 2
