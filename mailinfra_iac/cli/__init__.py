"""The ``mailinfra`` command line: a thin layer over :mod:`mailinfra_iac.api`."""
