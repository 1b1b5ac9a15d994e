"""The application layer: the ``rh-parallel`` command (``demo`` and ``bench``).

The entry point is :func:`rh_parallel.cli.main.main`. Nothing is imported here: ``python -m
rh_parallel.cli.main`` would otherwise find its module already imported by this package and
warn about it on stderr.
"""
