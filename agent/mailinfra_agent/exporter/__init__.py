"""The queue exporter of the MTA hosts (``mailinfra-agent exporter``): Prometheus metrics computed at scrape time.

Needs the ``metrics`` extra (prometheus_client). Metric names and labels: docs/monitoring.md, "Exporter". A new
collector is one module under ``mailinfra_agent/queue/`` implementing ``QueueCollector``, chosen in
``server.collectors_for``.
"""

from .metrics import QueueMetrics
from .server import build, collectors_for, exposition, serve

__all__ = ['QueueMetrics', 'build', 'collectors_for', 'exposition', 'serve']
