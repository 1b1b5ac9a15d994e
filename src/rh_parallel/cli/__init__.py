"""The application layer: the ``rh-parallel`` command (``demo`` and ``bench``)."""

from rh_parallel.cli.main import main

__all__ = ["main"]
