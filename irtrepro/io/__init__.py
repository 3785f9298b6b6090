"""Device readers (and the writers the synthetic study uses), one module per source kind.

Use :func:`read` with a kind and a format name, or let :func:`detect` pick the format.
"""

from irtrepro.io.registry import KINDS, detect, formats, get_reader, read, register

__all__ = ["KINDS", "detect", "formats", "get_reader", "read", "register"]
