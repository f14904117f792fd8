"""What every command that reads the contract does first (not a command itself: ``cli.COMMANDS`` lists those)."""

from __future__ import annotations

import sys

from ..contract import Contract, ContractError, load_contract


def load_or_report(path: str) -> Contract | None:
    """The contract at ``path``, or None after printing each of its problems to stderr (the caller exits 2)."""
    try:
        return load_contract(path)
    except ContractError as error:
        for problem in error.problems:
            print(f'{error.source}: {problem}', file=sys.stderr)
        return None
