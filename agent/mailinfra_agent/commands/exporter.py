"""``mailinfra-agent exporter``: serve the queue metrics of this host's MTA to Prometheus (a long-running service).

Needs the ``metrics`` extra (prometheus_client). Logs one line per problem to standard error (the journal);
a collector that fails is reported in the metrics (``mailinfra_collector_up 0``), never by exiting.
Exit codes: 0 stopped by SIGTERM/SIGINT (``--once``: every collector up), 1 ``--once`` with a collector down,
2 no contract, no prometheus_client or the address cannot be bound.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..contract import DEFAULT_CONTRACT_PATH, ContractError, load_contract

NAME = 'exporter'
HELP = 'Serve the queue metrics of the host (Prometheus exporter, default port 9745).'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--contract', type=Path, default=Path(DEFAULT_CONTRACT_PATH), help=f'default: {DEFAULT_CONTRACT_PATH}'
    )
    parser.add_argument('--listen-address', help="address to listen on (default: the contract's exporter section)")
    parser.add_argument('--port', type=int, help="TCP port (default: the contract's exporter section, 9745)")
    parser.add_argument(
        '--postfix-config-root',
        default='/etc',
        help="where the Postfix instances' configuration directories are (default: /etc)",
    )
    parser.add_argument('--once', action='store_true', help='print one scrape to standard output and exit')


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='mailinfra-agent exporter: %(message)s')
    log = logging.getLogger('mailinfra_agent.exporter')
    try:
        from .. import exporter
    except ImportError as error:
        log.error('prometheus_client is not installed (install mailinfra-agent[metrics]): %s', error)
        return 2
    try:
        contract = load_contract(args.contract)
    except ContractError as error:
        problems = error.problems[:5] + ([f'... {len(error.problems) - 5} more'] if len(error.problems) > 5 else [])
        log.error('cannot use the contract %s: %s', error.source, '; '.join(problems))
        return 2
    settings = contract.exporter
    if settings.timeout <= 0 or settings.top_domains < 0:
        log.error("the contract's exporter section needs timeout > 0 and top_domains >= 0")
        return 2
    metrics = exporter.build(contract, postfix_config_root=args.postfix_config_root)
    if args.once:
        sys.stdout.buffer.write(exporter.exposition(metrics))
        last = metrics.last
        return 0 if last is not None and all(result.up for result in last.results) else 1
    port = args.port if args.port is not None else settings.port
    if not 0 < port < 65536:
        log.error('port %d is not a TCP port', port)
        return 64
    address = args.listen_address or settings.listen_address
    return exporter.serve(metrics, address, port)
