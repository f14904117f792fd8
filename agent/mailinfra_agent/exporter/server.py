"""Run the exporter: the host's collectors from its contract, served over HTTP by prometheus_client."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest, start_http_server

from .. import __version__
from ..contract import Contract
from ..queue.base import QueueCollector
from .feedback import feedback_metrics
from .metrics import QueueMetrics
from .shaping import shaping_metrics

log = logging.getLogger('mailinfra_agent.exporter')

DEFAULT_POWERMTA_URL = 'http://127.0.0.1:8080'


def collectors_for(contract: Contract, postfix_config_root: str = '/etc') -> list[QueueCollector]:
    """The queue collectors of the host's MTA (none on a host without one)."""
    settings = contract.exporter
    if contract.host.mta == 'powermta':
        from ..queue.powermta import PowerMtaQueueCollector

        url = settings.powermta_url or DEFAULT_POWERMTA_URL
        return [PowerMtaQueueCollector(contract, url, timeout=settings.timeout, top=settings.top_domains)]
    if contract.host.mta == 'postfix':
        from ..queue.postfix import PostfixQueueCollector, instances_from_contract

        instances = instances_from_contract(contract, postfix_config_root)
        return [PostfixQueueCollector(instances, contract.isps, top_domains=settings.top_domains)]
    return []


def registry_for(metrics: QueueMetrics) -> CollectorRegistry:
    """Our metrics and the process's own (``process_*``), without prometheus_client's Python-runtime defaults."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    for companion in metrics.companions:
        registry.register(companion)
    ProcessCollector(registry=registry)
    return registry


def build(
    contract: Contract, collectors: Sequence[QueueCollector] | None = None, postfix_config_root: str = '/etc'
) -> QueueMetrics:
    chosen = collectors_for(contract, postfix_config_root) if collectors is None else list(collectors)
    if not chosen:
        log.warning('no queue collector: the contract names no MTA on this host; serving build info only')
    metrics = QueueMetrics(
        chosen, __version__, isps=(isp.name for isp in contract.isps), top_domains=contract.exporter.top_domains
    )
    metrics.companions.append(feedback_metrics(contract))
    metrics.companions.append(shaping_metrics(contract))
    return metrics


def exposition(metrics: QueueMetrics) -> bytes:
    """One scrape's text, as the HTTP endpoint serves it."""
    return generate_latest(registry_for(metrics))


def serve(metrics: QueueMetrics, address: str, port: int, stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop``); 0 on a clean stop, 2 when the address cannot be bound."""
    stop = stop or threading.Event()
    try:
        server, thread = start_http_server(port, addr=address, registry=registry_for(metrics))
    except OSError as error:
        log.error('cannot listen on %s port %d: %s', address, port, error.strerror or error)
        return 2

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
    log.info(
        'mailinfra-agent %s exporter listening on %s port %d (collectors: %s)',
        __version__,
        address,
        port,
        ', '.join(c.name for c in metrics.collectors) or 'none',
    )
    stop.wait()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    log.info('exporter stopped')
    return 0
