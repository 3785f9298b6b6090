"""Shared command line of the analysis scripts: ``--study data/study.nc --out reports/``."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(run, name: str, description: str) -> None:
    """Parse ``--study``/``--out``/``--seed``, run the analysis, write its part to ``out``."""
    from irtrepro.report.writer import write_report
    from irtrepro.study import open_study

    p = argparse.ArgumentParser(prog=f"analyses/{name}.py", description=description)
    p.add_argument("--study", default="data/study.nc", help="Study file (.nc or .zarr)")
    p.add_argument("--out", default=f"reports/{name}", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    part = run(open_study(a.study), seed=a.seed)
    page = write_report([part], Path(a.out), title=part.title)
    print(f"wrote {page}")
