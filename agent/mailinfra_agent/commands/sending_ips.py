"""``mailinfra-agent sending-ips apply|check|remove``: keep the sending addresses on their interfaces.

Run by ``mailinfra-sending-ips.service`` (mta_base role): ExecStart/ExecReload ``apply``, ExecStop ``remove``;
the role runs ``check`` (exit 1: ``apply`` would change something) to repair drift.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..sending_ips import CONFIG, STATE, SendingIps

NAME = 'sending-ips'
HELP = 'Add, check or remove the sending IP addresses listed in the sending-ips configuration.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        'action',
        choices=('apply', 'check', 'remove'),
        help='apply: add the listed and remove the no longer listed addresses; check: exit 1 when apply would '
        'change anything; remove: remove every address applied before',
    )
    parser.add_argument('--config', type=Path, default=CONFIG, help=f'the list of addresses (default: {CONFIG})')
    parser.add_argument(
        '--state', type=Path, default=STATE, help=f'where the addresses applied last are remembered (default: {STATE})'
    )


def run(args: argparse.Namespace) -> int:
    return SendingIps(args.config, args.state).run(args.action)
