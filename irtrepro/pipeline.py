"""The steps `make report` chains before the analyses: data present, verified, Study built.

Each step is a plain function; the CLI subcommands and the report call them.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from irtrepro._logging import logger
from irtrepro.errors import ChecksumError, ManifestError
from irtrepro.manifest import Manifest, load_manifest, verify


def ensure_files(manifest_path: str | os.PathLike, *, progress: bool | None = None) -> Manifest:
    """Load the manifest; regenerate missing synthetic files; verify every checksum.

    A manifest with a ``generator`` section describes a synthetic study: when any of its files
    is missing, the whole study is regenerated from the recorded seed and settings, and the new
    files must match the recorded sha256 values (the generator is deterministic), otherwise
    :class:`ChecksumError` says which differ. A manifest without a generator must have all its
    files.
    """
    manifest_path = Path(manifest_path)
    m = load_manifest(manifest_path)
    missing = [fe for fe in m.files() if not fe.path.exists()]
    if missing and m.generator:
        from irtrepro.synth.study import GeneratorConfig, generate_study

        out = m.root / m.generator.get("out", "data/demo")
        logger.info("%d file(s) missing: generating the synthetic study into %s", len(missing),
                    out)
        t0 = time.perf_counter()
        cfg = GeneratorConfig.from_dict(m.generator.get("config", {}))
        # the fresh manifest is written beside the recorded one, so relative paths agree
        fd, tmp = tempfile.mkstemp(prefix=".regen.", suffix=".yaml", dir=m.root)
        os.close(fd)
        try:
            generate_study(out, cfg, manifest_path=tmp, progress=progress)
            fresh = yaml.safe_load(Path(tmp).read_text())
        finally:
            Path(tmp).unlink(missing_ok=True)
        logger.info("generated in %.0f s", time.perf_counter() - t0)
        new = {(s["id"], ses["id"], k): f.get("sha256") for s in fresh["subjects"]
               for ses in s["sessions"] for k, f in ses["files"].items()}
        diff = [fe for s in m.sessions for k, fe in s.files.items()
                if fe.sha256 and new.get((s.subject, s.session, k)) != fe.sha256]
        if diff:
            lines = "\n  ".join(f"{fe.where}: regenerated file differs ({fe.rel})"
                                for fe in diff[:20])
            raise ChecksumError(f"{manifest_path}: the generator did not reproduce the recorded "
                                f"checksums of {len(diff)} file(s):\n  {lines}")
    elif missing:
        lines = "\n  ".join(f"{fe.where}: missing ({fe.rel})" for fe in missing[:20])
        raise ManifestError(f"{manifest_path}: {len(missing)} file(s) missing:\n  {lines}")
    verify(m)
    return m
