"""Real DNS servers for tests: Knot DNS on loopback, owned and configured by the tests."""
