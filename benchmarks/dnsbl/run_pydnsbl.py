"""One whole pydnsbl run (PyPI ``pydnsbl`` 1.1.7) against a given name server; writes every (subject, zone) verdict.

pydnsbl builds its resolver as ``aiodns.DNSResolver(timeout=timeout, tries=tries, loop=...)`` in
``BaseDNSBLChecker.__init__`` and has no nameserver argument (c-ares reads /etc/resolv.conf). aiodns passes
extra keyword arguments to ``pycares.Channel``, whose ``servers`` take addresses only and whose ``udp_port`` /
``tcp_port`` set the port, so the checker's resolver is replaced by one built the same way (the same
timeout and tries) with ``nameservers=[address], udp_port=port, tcp_port=port``. Everything else is
pydnsbl's own code: ``bulk_check`` over all subjects, its default concurrency of 200.

Verdicts as pydnsbl reports them: ``listed`` when the zone is in ``detected_by`` (any A record), ``error``
when it is in ``failed_providers``, else ``clean``.

    python benchmarks/dnsbl/run_pydnsbl.py --server 127.0.0.77:PORT --ips ips.txt --domains domains.txt \\
        --ip-zones zones-ip.txt --domain-zones zones-domain.txt --out pydnsbl.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import warnings
from pathlib import Path
from typing import Any

import aiodns
from pydnsbl import DNSBLDomainChecker, DNSBLIpChecker
from pydnsbl.providers import Provider

TIMEOUT = 5  # pydnsbl's defaults
TRIES = 2


def _lines(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def _point_at(checker: Any, server: str) -> None:
    address, _, port = server.rpartition(':')
    checker._resolver = aiodns.DNSResolver(
        nameservers=[address.strip('[]')],
        udp_port=int(port),
        tcp_port=int(port),
        timeout=TIMEOUT,
        tries=TRIES,
        loop=checker._loop,
    )


def verdicts(results: list[Any]) -> list[list[Any]]:
    out = []
    for result in results:
        for response in result._results:  # DNSBLResponse: provider, response (c-ares A results), error
            zone = response.provider.host
            if zone in result.detected_by:
                status = 'listed'
            elif response.provider in result.failed_providers:
                status = 'error'
            else:
                status = 'clean'
            answers = sorted(record.host for record in response.response or ())
            out.append([result.addr, zone, status, answers])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--server', required=True, help='address:port of the name server')
    parser.add_argument('--ips', required=True)
    parser.add_argument('--domains', required=True)
    parser.add_argument('--ip-zones', required=True)
    parser.add_argument('--domain-zones', required=True)
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    warnings.simplefilter('ignore', DeprecationWarning)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pairs: list[list[Any]] = []
    ip_checker = DNSBLIpChecker(providers=[Provider(z) for z in _lines(args.ip_zones)], loop=loop)
    _point_at(ip_checker, args.server)
    pairs += verdicts(ip_checker.bulk_check(_lines(args.ips)))
    domain_checker = DNSBLDomainChecker(providers=[Provider(z) for z in _lines(args.domain_zones)], loop=loop)
    _point_at(domain_checker, args.server)
    pairs += verdicts(domain_checker.bulk_check(_lines(args.domains)))
    Path(args.out).write_text(json.dumps({'tool': 'pydnsbl 1.1.7', 'pairs': pairs}))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
