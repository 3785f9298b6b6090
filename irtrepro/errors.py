"""Exceptions and warnings of irtrepro.

Every error the toolkit raises on bad input is a subclass of :class:`IrtreproError`, and its
message names the culprit (file, line, YAML path, subject, session, variable, frame) and what was
expected. Specific errors also subclass the matching builtin (``ValueError``, ``KeyError``,
``FileNotFoundError``) so generic ``except`` clauses keep working.
"""

from __future__ import annotations


class IrtreproError(Exception):
    """Base class of every error raised by irtrepro."""


class OptionError(IrtreproError, ValueError):
    """An argument got a value outside its allowed set."""


class SplitError(OptionError):
    """Subjects cannot be split into training and held-out sides as asked."""


class ManifestError(IrtreproError, ValueError):
    """The study manifest is malformed, inconsistent, or points at bad files."""


class ChecksumError(ManifestError):
    """A file listed in the manifest does not match its recorded sha256."""


class ReaderError(IrtreproError, ValueError):
    """A device export could not be read: wrong format, missing column, bad value."""


class FormatError(ReaderError):
    """A file is not in the format it claims to be (or no reader recognises it)."""


class StudyError(IrtreproError, ValueError):
    """A Study dataset violates the data contract (dims, units, coordinates)."""


class SyncError(IrtreproError, ValueError):
    """Streams could not be put on the session clock."""


class ProtocolError(IrtreproError, ValueError):
    """A running protocol definition is invalid."""


class StatsError(IrtreproError, ValueError):
    """A statistic cannot be computed on the data given (too few subjects, zero variance, ...)."""


class IncompleteError(IrtreproError, RuntimeError):
    """A report or Study was written, but some of its steps failed (listed in ``failures``)."""

    def __init__(self, message: str, failures: list[str] | None = None, output=None):
        super().__init__(message)
        self.failures = list(failures or [])
        self.output = output


class ModelError(IrtreproError, ValueError):
    """A model checkpoint or its inputs do not match (classes, normalisation, shapes)."""


class IrtreproWarning(UserWarning):
    """Base class of warnings issued by irtrepro (tests turn them into errors)."""


def check_option(name: str, value, allowed) -> None:
    """Raise :class:`OptionError` if ``value`` is not one of ``allowed``.

    Examples
    --------
    >>> check_option("missing", "listwise", ("listwise", "mixed"))
    >>> check_option("missing", "drop", ("listwise", "mixed"))
    Traceback (most recent call last):
    ...
    irtrepro.errors.OptionError: missing='drop'; expected one of ['listwise', 'mixed']
    """
    if value not in allowed:
        raise OptionError(f"{name}={value!r}; expected one of {sorted(allowed)}")
