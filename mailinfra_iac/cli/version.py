"""``mailinfra --version``: the installed version and which roles and Terraform modules are used."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..paths import data_root
from ..problems import MailinfraError


def version_text() -> str:
    """Two lines: ``mailinfra-iac VERSION (mailinfra-agent VERSION)`` and where the roles and modules are."""
    from importlib import metadata  # 50 ms: only for --version

    versions = []
    for distribution in ('mailinfra-iac', 'mailinfra-agent'):
        try:
            versions.append(f'{distribution} {metadata.version(distribution)}')
        except metadata.PackageNotFoundError:
            versions.append(f'{distribution} (not installed)')
    try:
        where = data_root().describe()
    except MailinfraError as error:
        where = f'roles and Terraform modules: not found ({error})'
    return f'{versions[0]} ({versions[1]})\n{where}'


class VersionAction(argparse.Action):
    """Like argparse's ``version`` action, but looks the roles and modules up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        kwargs.setdefault('help', 'show the version and where the roles and Terraform modules come from, then exit')
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        print(version_text())
        parser.exit()
