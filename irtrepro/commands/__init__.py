"""Subcommands of the ``irtrepro`` CLI, one thin module each (see :mod:`irtrepro.cli`)."""
