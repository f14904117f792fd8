"""The DNS check tests' real Knot, serving the newsletter example (``tests/dnscheck/conftest.py``), for the audit."""

from ..dnscheck.conftest import example_spec, example_zones, knot, served, session_served  # noqa: F401
