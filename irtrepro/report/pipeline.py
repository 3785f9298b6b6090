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
from irtrepro.manifest import FileEntry, Manifest, load_manifest, verify


def ensure_files(manifest_path: str | os.PathLike, *, progress: bool | None = None,
                 checksum_cache: str | os.PathLike | None = None) -> Manifest:
    """Load the manifest; regenerate missing synthetic files; verify every checksum.

    With ``checksum_cache`` (a :class:`~irtrepro.manifest.ChecksumCache` file), files
    unchanged since they were last verified there are not read again.

    A manifest with a ``generator`` section describes a synthetic study: when any of its files
    is missing, the whole study is regenerated from the recorded seed and settings, and the new
    files must match the recorded sha256 values (the generator is deterministic), otherwise
    :class:`ChecksumError` says which differ, with the recorded and the installed versions of
    the packages that write them. A manifest without a generator must have all its files.
    """
    manifest_path = Path(manifest_path)
    m = load_manifest(manifest_path)
    missing = [fe for fe in m.files() if not fe.path.exists()]
    if missing and m.generator:
        out = m.root / m.generator.get("out", "data/demo")
        logger.info("%d file(s) missing: generating the synthetic study into %s", len(missing),
                    out)
        diff = regenerate(m, out, progress=progress)
        if diff:
            raise ChecksumError(mismatch_message(m, diff))
    elif missing:
        lines = "\n  ".join(f"{fe.where}: missing ({fe.rel})" for fe in missing[:20])
        raise ManifestError(f"{manifest_path}: {len(missing)} file(s) missing:\n  {lines}")
    verify(m, cache=checksum_cache)
    return m


def _generator(m: Manifest):
    """(writer function, settings) of a synthetic study's manifest: the default study's
    generator, or the lab-shaped one (``generator.name: irtrepro.synth.lab``)."""
    if not m.generator:
        raise ManifestError(f"{m.path}: no 'generator' section; only a synthetic study can be "
                            "regenerated")
    config = m.generator.get("config", {})
    if m.generator.get("name") == "irtrepro.synth.lab":
        from irtrepro.synth.lab import LabConfig, generate_lab_study

        return generate_lab_study, LabConfig.from_dict(config)
    from irtrepro.synth.study import GeneratorConfig, generate_study

    return generate_study, GeneratorConfig.from_dict(config)


def record(m: Manifest) -> Path:
    """Regenerate a synthetic study in place and rewrite its manifest (new sha256 values and
    this environment's versions); returns the data folder."""
    generate, cfg = _generator(m)
    out = m.root / m.generator.get("out", "data/demo")
    generate(out, cfg, manifest_path=m.path)
    return out


def regenerate(m: Manifest, out: str | os.PathLike, *, subjects: list[str] | None = None,
               progress: bool | None = None) -> list[FileEntry]:
    """Run the manifest's generator into ``out``; return the entries whose sha256 differ.

    Parameters
    ----------
    m : Manifest
        A manifest with a ``generator`` section (a synthetic study).
    out : path-like
        Data folder to write; the manifest's own ``out`` regenerates the study in place, a
        scratch folder checks the generator without touching the study.
    subjects : list of str, optional
        Regenerate only these subjects (their files are byte-identical to the full study's).

    Returns
    -------
    list of FileEntry
        The recorded entries (of the regenerated subjects) whose new file differs.
    """
    generate, cfg = _generator(m)
    out = Path(out)
    t0 = time.perf_counter()
    # the fresh manifest is written beside the recorded one, so relative paths agree
    fd, tmp = tempfile.mkstemp(prefix=".regen.", suffix=".yaml", dir=m.root)
    os.close(fd)
    try:
        generate(out, cfg, manifest_path=tmp, progress=progress, subjects=subjects)
        fresh = yaml.safe_load(Path(tmp).read_text())
    finally:
        Path(tmp).unlink(missing_ok=True)
    logger.info("generated in %.0f s", time.perf_counter() - t0)
    new = {(s["id"], ses["id"], k): (f.get("path"), f.get("sha256"))
           for s in fresh["subjects"] for ses in s["sessions"] for k, f in ses["files"].items()}
    diff = []
    for s in m.sessions:
        if subjects is not None and s.subject not in subjects:
            continue
        for k, fe in s.files.items():
            if fe.sha256 and new.get((s.subject, s.session, k), (None, None))[1] != fe.sha256:
                diff.append(fe)
    return diff


def mismatch_message(m: Manifest, diff: list[FileEntry]) -> str:
    """What differs, the likely cause (the environment) and what the user can do."""
    from irtrepro.synth.study import generator_environment

    lines = "\n  ".join(f"{fe.where}: regenerated file differs ({fe.rel})" for fe in diff[:20])
    more = f"\n  ... and {len(diff) - 20} more" if len(diff) > 20 else ""
    recorded = (m.generator or {}).get("environment") or {}
    installed = generator_environment()
    env = "\n  ".join(f"{k}: recorded {recorded.get(k, 'not recorded')}, installed {v}"
                      + ("" if recorded.get(k) == v else "   <- differs")
                      for k, v in installed.items())
    differs = [k for k, v in installed.items() if recorded.get(k) != v]
    cause = ("The generator is deterministic, so the likely cause is an environment that "
             "differs from the one that recorded the manifest" if differs else
             "The installed versions are the recorded ones, so the generator's code or the "
             "recorded checksums changed since the manifest was written")
    return (f"{m.path}: the generator did not reproduce the recorded checksums of "
            f"{len(diff)} file(s):\n  {lines}{more}\n{cause}:\n  " + env + "\n"
            "What you can do: install the tested versions (`make install` uses "
            "requirements.lock), or, if you changed the generator or want this environment's "
            "files, record new checksums with `irtrepro manifest regenerate --record` and "
            "commit the new manifest.")
