"""dask-jobqueue (the ``cluster`` extra): a jobqueue cluster's address serves ``--scheduler``,
and the Slurm/PBS snippets of docs/cluster.md build clusters whose job scripts hold the
documented prologue and resources (nothing is submitted)."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest
import xarray as xr

dask_jobqueue = pytest.importorskip("dask_jobqueue")
distributed = pytest.importorskip("distributed")

DOC = Path(__file__).resolve().parents[1] / "docs" / "cluster.md"


def test_extract_on_a_jobqueue_cluster_address_equals_serial(tmp_path, monkeypatch):
    from dask_jobqueue.local import LocalCluster

    from irtrepro.cli import main
    from irtrepro.io.thermal import write_frames
    from irtrepro.synth.thermogram import render_session
    from tests.synth.test_thermogram import make_truth

    # LocalJob runs the job script's words as one command, so a prologue (``export ...``)
    # cannot run there: the workers inherit the environment instead
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ses = render_session(make_truth(20), shape=(48, 64), seed=0, frame_interval_s=1)
    store = write_frames(tmp_path / "t.zarr", ses["frames"], chunk_frames=4, progress=False,
                         masks={"roi": ses["roi"], "vessels": ses["vessels"]})
    args = ["-q", "extract", str(store), "--chunk-frames", "8"]
    assert main([*args, "--out", str(tmp_path / "serial.nc")]) == 0
    with LocalCluster(cores=1, processes=1, memory="1GB", local_directory=str(tmp_path / "w"),
                      scheduler_options={"dashboard_address": ":0"}) as cluster:
        cluster.scale(2)
        with distributed.Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
            assert len(client.scheduler_info()["workers"]) == 2
            assert main([*args, "--out", str(tmp_path / "jobs.nc"),
                         "--scheduler", cluster.scheduler_address]) == 0
            # the chunks ran on the jobqueue workers (20 frames in chunks of 8: 3 tasks)
            ran = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert sum(ran.values()) >= 3
    a, b = (xr.load_dataset(tmp_path / f"{k}.nc") for k in ("serial", "jobs"))
    xr.testing.assert_identical(a, b)


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def _unbound_names(tree: ast.Module) -> set[str]:
    """Names a snippet reads without importing or assigning them (or being builtins)."""
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Load)} - bound


def _cluster_kwargs(tree: ast.Module) -> tuple[str, dict]:
    """The class name and literal keyword arguments of the snippet's ``cluster = X(...)``."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and [getattr(t, "id", None) for t in node.targets] == ["cluster"]):
            call = node.value
            return call.func.id, {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    raise AssertionError("no `cluster = ...(...)` in the snippet")


def _expected_lines(name: str, kw: dict) -> list[str]:
    if name == "SLURMCluster":
        lines = [f"#SBATCH -p {kw['queue']}", f"#SBATCH -A {kw['account']}",
                 f"#SBATCH --cpus-per-task={kw['cores']}", f"#SBATCH -t {kw['walltime']}"]
    else:
        lines = [f"#PBS -q {kw['queue']}", f"#PBS -A {kw['account']}",
                 f"#PBS -l {kw['resource_spec']}", f"#PBS -l walltime={kw['walltime']}"]
    return lines + list(kw["job_script_prologue"])


def test_cluster_doc_snippets_build_their_job_scripts():
    blocks = _python_blocks(DOC.read_text())
    built = []
    for code in blocks:
        tree = ast.parse(code)
        unbound = _unbound_names(tree)
        assert not unbound, f"{sorted(unbound)} undefined in:\n{code}"
        name, kw = _cluster_kwargs(tree)
        cls = getattr(dask_jobqueue, name)
        # a scheduler starts here (no jobs are submitted); its dashboard on any free port
        with cls(**kw, scheduler_options={"dashboard_address": ":0"}) as cluster:
            script = cluster.job_script().splitlines()
        for line in _expected_lines(name, kw):
            assert line in script, (name, line)
        worker = next(i for i, s in enumerate(script) if "dask_worker" in s)
        # the prologue runs before the worker starts; workers are single-threaded
        assert all(script.index(p) < worker for p in kw["job_script_prologue"])
        assert f"--nworkers {kw['processes']}" in script[worker]
        assert "--nthreads 1" in script[worker]
        built.append(name)
    assert built == ["SLURMCluster", "PBSCluster"]
