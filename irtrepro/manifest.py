"""The study manifest: which subjects, sessions and files make up a study.

A manifest is a YAML file (``data_manifest.yaml`` at the top of the repository is the default
study). Paths in it are relative to the manifest's folder. Schema::

    study: {name: str, description: str}
    camera: {emissivity: 0.98, reflected_temperature: 22.0, distance: 1.5, frame_rate: 0.2}
    grid: {step_s: 1.0}                      # optional, study time grid (s)
    protocols: {NAME: {...}} | path.yaml     # optional, default: the reference study's
    generator: {seed: int, config: {...}}    # optional: files can be regenerated (synthetic)
    models:                                  # optional: trained models the report reuses
      segmentation: {path: models/lab_unet.pt, sha256: ...}   # or: segmentation: PATH
    subjects:
      - id: S01
        viat: 15.2                           # km/h, positive
        age: 28
        sex: M
        body_mass: 68.0                      # kg
        sessions:
          - id: CON
            day: 1
            protocol: CON
            start_time: "2026-03-02T09:00:00"  # exercise start, local wall clock
            files:
              cpet: {path: ..., format: cosmed-xlsx, sha256: ..., column_map: {...}}
              hr: {path: ..., format: polar-csv, sha256: ...}

File kinds: ``thermal``, ``cpet``, ``hr``, ``core``, ``face``, ``pose`` (recordings) and
``thermal_masks``, ``face_labels``, ``pose_keypoints`` (annotations). Every key of a file entry
other than ``path``, ``format`` and ``sha256`` is passed to the reader as an option.

Models (:data:`MODEL_NAMES`): ``segmentation`` is a model file of ``irtrepro train-seg
--annotations`` (:class:`irtrepro.vision.models.SegmentationModel`); ``make report`` segments
with it instead of training. Its entry takes ``path`` and ``sha256`` only; :func:`verify`
checks it like a session's file.

Errors name the YAML path and line, e.g.
``data_manifest.yaml:88: subjects[3].sessions[1].files.cpet: sha256 mismatch``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from irtrepro.errors import ChecksumError, ManifestError, ProtocolError
from irtrepro.protocols import Protocol, default_protocols, load_protocols

RECORDING_KINDS = ("thermal", "cpet", "hr", "core", "face", "pose")
ANNOTATION_KINDS = ("thermal_masks", "face_labels", "pose_keypoints")
FILE_KINDS = RECORDING_KINDS + ANNOTATION_KINDS
_FILE_KEYS = ("path", "format", "sha256")
#: Options of a file entry that place it on the session clock (not passed to its reader).
SYNC_OPTIONS = ("offset_s", "drift_ppm")
#: The keys each mapping of a manifest may have; anything else is an error (with a
#: did-you-mean), so that a typo never silently changes what is read.
SCHEMA_KEYS = {
    "top level": ("study", "camera", "grid", "protocols", "generator", "models", "subjects"),
    "study": ("name", "description"),
    "camera": ("emissivity", "reflected_temperature", "distance", "frame_rate",
               "atmospheric_temperature", "relative_humidity"),
    "grid": ("step_s",),
    "generator": ("name", "seed", "out", "truth", "config", "environment"),
    "model": ("path", "sha256"),
    "subject": ("id", "viat", "age", "sex", "body_mass", "sessions"),
    "session": ("id", "day", "protocol", "start_time", "files"),
}
#: Names of the ``models:`` entries: the trained models a study may name
MODEL_NAMES = ("segmentation",)
#: ``FileEntry.kind`` of a ``models:`` entry
MODEL_KIND = "model"
#: Formats of the kinds that the reader registry does not serve (read by their own modules).
OTHER_FORMATS = {"thermal_masks": ("zarr-masks",)}


# ---------------------------------------------------------------- YAML with line numbers
class _LineDict(dict):
    line: int = 0
    key_lines: dict | None = None


class _LineList(list):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader, node):
    d = _LineDict(loader.construct_mapping(node, deep=True))
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    for key_node, _ in node.value:
        d.key_lines.setdefault(loader.construct_object(key_node), key_node.start_mark.line + 1)
    return d


def _key_line(node: Any, key) -> int:
    """YAML line of ``key`` in mapping ``node`` (the mapping's own line when unknown)."""
    lines = getattr(node, "key_lines", None) or {}
    return lines.get(key, getattr(node, "line", 0))


def _construct_seq(loader, node):
    lst = _LineList(loader.construct_sequence(node, deep=True))
    lst.line = node.start_mark.line + 1
    return lst


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


# ---------------------------------------------------------------- data classes
@dataclass(frozen=True)
class FileEntry:
    """One file of a session.

    Attributes
    ----------
    kind : str
        One of :data:`FILE_KINDS`.
    path : Path
        Absolute path.
    rel : str
        The path as written in the manifest (relative to it).
    format : str or None
        Reader name (``None``: detect from the file).
    sha256 : str or None
        Expected checksum (of the file, or of a folder's listing, see :func:`sha256_path`).
    options : dict
        Reader options (``column_map``, ``offset_s``, ...).
    where : str
        YAML path with line, for error messages.
    """

    kind: str
    path: Path
    rel: str
    format: str | None
    sha256: str | None
    options: dict = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class SessionEntry:
    """One session of one subject."""

    subject: str
    session: str
    protocol: str
    day: int | None
    start_time: _dt.datetime | None
    files: dict[str, FileEntry]
    where: str = ""


@dataclass(frozen=True)
class SubjectEntry:
    """One subject with per-subject variables (``viat`` km/h, ``age`` years, ...)."""

    id: str
    viat: float
    attrs: dict
    where: str = ""


@dataclass
class Manifest:
    """A loaded, structurally validated manifest (files are checked by :func:`verify`)."""

    path: Path
    root: Path
    name: str
    description: str
    camera: dict
    grid_step: float
    protocols: dict[str, Protocol]
    subjects: list[SubjectEntry]
    sessions: list[SessionEntry]
    generator: dict | None
    sha256: str
    raw: dict
    #: ``{name: FileEntry}`` of the ``models:`` section (kind :data:`MODEL_KIND`, path
    #: resolved against the manifest's folder)
    models: dict[str, FileEntry] = field(default_factory=dict)

    def session(self, subject: str, session: str) -> SessionEntry:
        """The entry of ``subject``/``session``; :class:`ManifestError` if absent."""
        for s in self.sessions:
            if s.subject == subject and s.session == session:
                return s
        raise ManifestError(f"{self.path}: no session {session!r} for subject {subject!r}")

    def files(self, kind: str | None = None) -> list[FileEntry]:
        """Every file entry (of one kind, if given), in manifest order."""
        return [f for s in self.sessions for k, f in s.files.items() if kind in (None, k)]


# ---------------------------------------------------------------- checksums
def sha256_path(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a folder: a zarr store's content, another folder's file listing.

    A file's checksum is the sha256 of its bytes. A zarr store (a folder with ``zarr.json`` or
    ``.zgroup``) is hashed by what a reader sees: for each array in sorted order its name,
    dimension names, dtype, shape, attributes (canonical JSON) and decoded values (C order,
    little-endian), streamed block by block along the first axis. Its compressed chunks and
    zarr's own metadata are left out, because their bytes depend on the zarr and codec
    versions, not on the data. Any other folder hashes one line ``relative/path\tsha256\n``
    per file, in sorted order, so it is independent of file-system order and timestamps.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "zarr.json").is_file() or (path / ".zgroup").is_file():
            return _sha256_zarr(path)
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path).as_posix()}\t{sha256_path(f)}\n".encode())
        return h.hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _canonical_json(obj) -> bytes:
    import json

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def _sha256_zarr(path: Path, block_bytes: int = 64 << 20) -> str:
    """Content hash of a zarr store (see :func:`sha256_path`)."""
    import numpy as np
    import zarr

    group = zarr.open_group(str(path), mode="r")
    h = hashlib.sha256()
    h.update(b"group\t" + _canonical_json(dict(group.attrs)) + b"\n")
    arrays = sorted(group.arrays(), key=lambda kv: kv[0])
    for name, arr in arrays:
        attrs = dict(arr.attrs)
        dims = attrs.pop("_ARRAY_DIMENSIONS", None) or getattr(arr.metadata, "dimension_names",
                                                               None)
        dtype = np.dtype(arr.dtype).newbyteorder("<")
        head = {"name": name, "dims": list(dims) if dims else None, "dtype": dtype.str,
                "shape": list(arr.shape), "attrs": attrs}
        h.update(b"array\t" + _canonical_json(head) + b"\n")
        if arr.ndim == 0:
            h.update(np.asarray(arr[...], dtype=dtype).tobytes())
            continue
        row = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)) * dtype.itemsize)
        step = max(1, block_bytes // row)
        for i in range(0, arr.shape[0], step):
            h.update(np.ascontiguousarray(arr[i:i + step], dtype=dtype).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------- loading
def _at(path: Path, node: Any, where: str, key=None) -> str:
    line = _key_line(node, key) if key is not None else getattr(node, "line", 0)
    return f"{path.name}:{line}: {where}" if line else f"{path.name}: {where}"


def _parse_time(value, where: str) -> _dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day)
    try:
        return _dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ManifestError(f"{where}.start_time: {value!r} is not an ISO 8601 date-time "
                            "such as 2026-03-02T09:00:00") from None


def _did_you_mean(name: str, choices) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_keys(path: Path, node: Any, where: str, schema: str, problems: list[str]) -> None:
    """Append one problem per key of mapping ``node`` that ``SCHEMA_KEYS[schema]`` lacks."""
    if not isinstance(node, dict):
        return
    allowed = SCHEMA_KEYS[schema]
    for key in node:
        if key not in allowed:
            at = _at(path, node, f"{where}.{key}" if where else str(key), key)
            problems.append(f"{at}: unknown key {key!r}{_did_you_mean(key, allowed)} "
                            f"({schema} keys: {', '.join(allowed)})")


def _sha256_problem(path: Path, fe: dict, where: str) -> str | None:
    sha = fe.get("sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64
                                and all(c in "0123456789abcdef" for c in sha.lower())):
        return (f"{_at(path, fe, where)}.sha256: expected 64 hex digits (quote it in YAML), "
                f"got {sha!r}")
    return None


def _models(path: Path, root: Path, raw: dict, problems: list[str]) -> dict[str, FileEntry]:
    """The ``models:`` section: ``{name: FileEntry}``; problems appended, never raised."""
    section = raw.get("models")
    if section is None:
        return {}
    if not isinstance(section, dict):
        problems.append(f"{_at(path, raw, 'models', 'models')}: expected a mapping of model "
                        f"names ({', '.join(MODEL_NAMES)}) to files")
        return {}
    out = {}
    for name, fe in section.items():
        where = f"models.{name}"
        if name not in MODEL_NAMES:
            problems.append(f"{_at(path, section, where, name)}: unknown model {name!r}"
                            f"{_did_you_mean(name, MODEL_NAMES)} (models: "
                            f"{', '.join(MODEL_NAMES)})")
            continue
        if isinstance(fe, str):
            fe = {"path": fe}
        if not isinstance(fe, dict) or not fe.get("path"):
            problems.append(f"{_at(path, section, where, name)}: expected a path or a mapping "
                            "with 'path'")
            continue
        _check_keys(path, fe, where, "model", problems)
        bad = _sha256_problem(path, fe, where)
        if bad:
            problems.append(bad)
        out[str(name)] = FileEntry(MODEL_KIND, (root / str(fe["path"])).resolve(),
                                   str(fe["path"]), None, fe.get("sha256"), {},
                                   _at(path, section, where, name))
    return out


def _check_reader(path: Path, fe: dict, kind: str, where: str, file_path: Path,
                  problems: list[str]) -> None:
    """Check a file entry's format and options against the reader that will read it."""
    from irtrepro.errors import FormatError, OptionError
    from irtrepro.io import registry

    fmt = fe.get("format")
    opts = [k for k in fe if k not in _FILE_KEYS and k not in SYNC_OPTIONS]
    at = _at(path, fe, where)
    own = OTHER_FORMATS.get(kind, ())
    if fmt in own or (fmt is None and own and kind not in registry.KINDS):
        if opts:
            problems.append(f"{at}: {kind} files of format {fmt!r} take no reader options, "
                            f"got {sorted(opts)}")
        return
    if kind not in registry.KINDS:
        problems.append(f"{_at(path, fe, where + '.format', 'format')}: unknown {kind} "
                        f"format {fmt!r}{_did_you_mean(fmt, own)} (formats: {', '.join(own)})")
        return
    if fmt is None:
        if not opts or not file_path.exists():
            return  # detected from the file at read time; nothing to check options against
        try:
            fmt = registry.detect(file_path, kind)
        except FormatError as exc:
            problems.append(f"{at}: {exc}")
            return
    try:
        reader = registry.get_reader(kind, str(fmt))
    except OptionError:
        names = sorted({r.format for r in registry.formats(kind)} | set(own)
                       | ({r.format for r in registry.formats("thermal")} if kind == "face"
                          else set()))
        problems.append(f"{_at(path, fe, where + '.format', 'format')}: unknown {kind} "
                        f"format {fmt!r}{_did_you_mean(fmt, names)} (formats: "
                        f"{', '.join(names)})")
        return
    for opt in opts:
        if opt not in reader.options:
            allowed = list(reader.options) + list(SYNC_OPTIONS)
            problems.append(f"{_at(path, fe, where + '.' + str(opt), opt)}: reader {reader.format!r} "
                            f"takes no option {opt!r}{_did_you_mean(opt, allowed)} "
                            f"(options: {', '.join(allowed)})")


def load_manifest(path: str | os.PathLike, *, check_readers: bool = True) -> Manifest:
    """Read and structurally validate a manifest.

    Every problem found is reported at once in one :class:`ManifestError`, each naming the YAML
    path and line: missing or duplicate ids, unknown protocol, a vIAT that is not a positive
    number, unknown file kinds, a file entry without a path, an unknown key anywhere (with a
    did-you-mean), an unknown reader format and a reader option the chosen reader does not take.

    Parameters
    ----------
    path : path-like
        The YAML file.
    check_readers : bool
        Check each file entry's format and options against the reader registry (imports the
        reader modules).

    Returns
    -------
    Manifest
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read manifest: {exc.strerror}") from exc
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: expected a mapping at the top level")
    root = path.resolve().parent
    problems: list[str] = []

    _check_keys(path, raw, "", "top level", problems)
    for section in ("study", "camera", "grid", "generator"):
        _check_keys(path, raw.get(section), section, section, problems)
    study = raw.get("study") or {}
    camera = dict(raw.get("camera") or {})
    grid_step = float((raw.get("grid") or {}).get("step_s", 1.0))
    protos = dict(default_protocols())
    if raw.get("protocols"):
        try:
            src = raw["protocols"]
            protos.update(load_protocols(root / src if isinstance(src, str) else dict(src)))
        except ProtocolError as exc:
            problems.append(f"{_at(path, raw['protocols'], 'protocols')}: {exc}")

    subjects: list[SubjectEntry] = []
    sessions: list[SessionEntry] = []
    subs = raw.get("subjects")
    if not isinstance(subs, list) or not subs:
        problems.append(f"{path.name}: subjects: expected a non-empty list")
        subs = []
    seen_sub: set[str] = set()
    for i, sub in enumerate(subs):
        w = f"subjects[{i}]"
        if not isinstance(sub, dict) or "id" not in sub:
            problems.append(f"{_at(path, sub, w)}: expected a mapping with 'id'")
            continue
        _check_keys(path, sub, w, "subject", problems)
        sid = str(sub["id"])
        if sid in seen_sub:
            problems.append(f"{_at(path, sub, w)}.id: duplicate subject id {sid!r}")
        seen_sub.add(sid)
        viat = sub.get("viat")
        if isinstance(viat, bool) or not isinstance(viat, int | float) or not viat > 0:
            problems.append(f"{_at(path, sub, w)}.viat: expected a positive number (km/h), "
                            f"got {viat!r}")
            viat = float("nan")
        attrs = {k: v for k, v in sub.items() if k not in ("id", "viat", "sessions")}
        subjects.append(SubjectEntry(sid, float(viat), attrs, _at(path, sub, w)))
        seen_ses: set[str] = set()
        for j, ses in enumerate(sub.get("sessions") or []):
            ws = f"{w}.sessions[{j}]"
            if not isinstance(ses, dict) or "id" not in ses:
                problems.append(f"{_at(path, ses, ws)}: expected a mapping with 'id'")
                continue
            _check_keys(path, ses, ws, "session", problems)
            sesid = str(ses["id"])
            if sesid in seen_ses:
                problems.append(f"{_at(path, ses, ws)}.id: session {sesid!r} listed twice for "
                                f"subject {sid!r}")
            seen_ses.add(sesid)
            proto = str(ses.get("protocol", sesid))
            if proto not in protos:
                problems.append(f"{_at(path, ses, ws)}.protocol: unknown protocol {proto!r}; "
                                f"expected one of {sorted(protos)}")
            try:
                start = _parse_time(ses.get("start_time"), _at(path, ses, ws))
            except ManifestError as exc:
                problems.append(str(exc))
                start = None
            files: dict[str, FileEntry] = {}
            for kind, fe in (ses.get("files") or {}).items():
                wf = f"{ws}.files.{kind}"
                if kind not in FILE_KINDS:
                    problems.append(f"{_at(path, fe, wf)}: unknown file kind {kind!r}"
                                    f"{_did_you_mean(kind, FILE_KINDS)}; expected one of "
                                    f"{list(FILE_KINDS)}")
                    continue
                if isinstance(fe, str):
                    fe = {"path": fe}
                if not isinstance(fe, dict) or not fe.get("path"):
                    problems.append(f"{_at(path, fe, wf)}: expected a mapping with 'path'")
                    continue
                bad = _sha256_problem(path, fe, wf)
                if bad:
                    problems.append(bad)
                opts = {k: v for k, v in fe.items() if k not in _FILE_KEYS}
                if check_readers:
                    _check_reader(path, fe, kind, wf, (root / str(fe["path"])).resolve(),
                                  problems)
                files[kind] = FileEntry(kind, (root / str(fe["path"])).resolve(), str(fe["path"]),
                                        fe.get("format"), fe.get("sha256"), opts,
                                        _at(path, fe, wf))
            day = ses.get("day")
            sessions.append(SessionEntry(sid, sesid, proto, int(day) if day is not None else None,
                                         start, files, _at(path, ses, ws)))
    models = _models(path, root, raw, problems)
    # a files section for a subject that does not exist
    for k, v in (raw.get("files") or {}).items():
        problems.append(f"{_at(path, v, 'files.' + str(k))}: files must be listed under "
                        "subjects[].sessions[].files")
    if problems:
        raise ManifestError(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return Manifest(path=path.resolve(), root=root, name=str(study.get("name", path.stem)),
                    description=str(study.get("description", "")), camera=camera,
                    grid_step=grid_step, protocols=protos, subjects=subjects, sessions=sessions,
                    generator=raw.get("generator"), sha256=sha256_path(path), raw=raw,
                    models=models)


def file_signature(path: str | os.PathLike) -> list:
    """What a file's checksum is remembered by: size, modification time (ns) and inode of the
    file, or of every file inside a folder (relative path included), in sorted order."""
    path = Path(path)

    def one(p: Path) -> list:
        st = p.stat()
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    if path.is_dir():
        return [[f.relative_to(path).as_posix(), *one(f)]
                for f in sorted(p for p in path.rglob("*") if p.is_file())]
    return one(path)


class ChecksumCache:
    """sha256 values remembered by :func:`file_signature`, in one JSON file.

    A file whose signature is unchanged since it was hashed is not read again (the rule of
    git's index and of make: a file rewritten in place keeps neither its modification time
    nor, mostly, its inode). Delete the file to hash everything again.
    """

    def __init__(self, path: str | os.PathLike):
        import json

        self.path = Path(path)
        try:
            self.entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self._dirty = False

    def sha256(self, path: str | os.PathLike) -> str:
        """The sha256 of ``path`` (:func:`sha256_path`), from the cache when unchanged."""
        key = str(Path(path).resolve())
        sig = file_signature(path)
        hit = self.entries.get(key)
        if hit and hit.get("signature") == sig:
            return hit["sha256"]
        digest = sha256_path(path)
        self.entries[key] = {"signature": sig, "sha256": digest}
        self._dirty = True
        return digest

    def save(self) -> None:
        import json

        from irtrepro._atomic import atomic_path

        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self.entries))
        self._dirty = False


def verify(manifest: Manifest, *, raise_on_error: bool = True,
           kinds: tuple[str, ...] | None = None,
           cache: str | os.PathLike | None = None) -> list[tuple[FileEntry, str]]:
    """Check every file of the manifest (its models too) exists and matches its sha256.

    Parameters
    ----------
    manifest : Manifest
    raise_on_error : bool
    kinds : tuple of str, optional
        Only these file kinds (:data:`MODEL_KIND` for the ``models:`` entries); default: all.
    cache : path-like, optional
        A :class:`ChecksumCache` file: files unchanged since they were last hashed (size,
        modification time, inode) are not read again. Default: every file is hashed.

    Returns
    -------
    list of (FileEntry, status)
        ``status`` is ``"ok"``, ``"missing"``, ``"sha256 mismatch"`` or ``"no sha256"``.

    Raises
    ------
    ChecksumError
        If ``raise_on_error`` and any file is missing or differs, listing each by YAML path.
    """
    results = []
    known = ChecksumCache(cache) if cache is not None else None
    digest = known.sha256 if known is not None else sha256_path
    for fe in manifest.files() + list(manifest.models.values()):
        if kinds is not None and fe.kind not in kinds:
            continue
        if not fe.path.exists():
            status = "missing"
        elif not fe.sha256:
            status = "no sha256"
        elif digest(fe.path) != fe.sha256:
            status = "sha256 mismatch"
        else:
            status = "ok"
        results.append((fe, status))
    if known is not None:
        known.save()
    bad = [(fe, st) for fe, st in results if st in ("missing", "sha256 mismatch")]
    if bad and raise_on_error:
        lines = [f"{fe.where}: {st} ({fe.rel})" for fe, st in bad]
        raise ChecksumError(f"{manifest.path}: {len(bad)} file(s) failed verification:\n  "
                            + "\n  ".join(lines))
    return results


def dump_manifest(data: dict, path: str | os.PathLike) -> Path:
    """Write a manifest mapping as YAML, atomically."""
    from irtrepro._atomic import atomic_path

    path = Path(path)

    def plain(o):
        if isinstance(o, dict):
            return {k: plain(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [plain(v) for v in o]
        return o

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(plain(data), sort_keys=False, width=100))
    return path
