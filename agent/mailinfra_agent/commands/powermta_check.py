"""``mailinfra-agent powermta-check CONFIG``: the structural check the powermta role validates its config with.

Exit 0: no problem; 1: problems (one line each on stderr); 2: the file cannot be read.
"""

from __future__ import annotations

import argparse

from ..powermta.checker import report

NAME = 'powermta-check'
HELP = 'Check the structure of a PowerMTA configuration file (docs/powermta.md lists what it knows).'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('config', metavar='CONFIG', help='the configuration file; "-" reads standard input')


def run(args: argparse.Namespace) -> int:
    return report(args.config)
