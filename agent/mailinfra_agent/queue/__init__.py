"""Queue collectors: what is queued on this host, per stream, read cheaply at scrape time.

``base`` holds the interface every collector implements (``QueueCollector``, ``StreamQueue``, ``CollectorError``);
one module per MTA beside it (``postfix``, ``powermta``). The exporter only knows the interface.
"""

from mailinfra_agent.queue.base import QUEUE_NAMES, CollectorError, QueueCollector, StreamQueue

__all__ = ['QUEUE_NAMES', 'CollectorError', 'QueueCollector', 'StreamQueue']
