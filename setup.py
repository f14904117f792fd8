"""Bundle the Ansible roles and Terraform modules into the wheel; everything else is in pyproject.toml.

``build_py`` copies ``roles/`` and ``terraform/modules/`` into ``mailinfra_iac/_data/`` of the build, so an
installed wheel renders without a checkout (``mailinfra_iac/paths.py`` finds them there). An editable install
needs no copy: the package then sits in the checkout and uses its roles/ and modules directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLED = ('roles', 'terraform/modules')
"""Directories of the checkout that ship in the wheel, under mailinfra_iac/_data/."""


def _skip(directory: str, names: list[str]) -> set[str]:
    """Hidden files, caches and Terraform working state never ship."""
    return {name for name in names if name.startswith('.') or name in {'__pycache__', 'terraform.tfstate'}}


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        target = Path(self.build_lib) / 'mailinfra_iac' / '_data'
        for relative in BUNDLED:
            source = HERE / relative
            if not source.is_dir():
                raise SystemExit(f'setup.py: {source} is missing; build the wheel from a complete checkout')
            dangling = sorted(str(path) for path in source.rglob('*') if path.is_symlink() and not path.exists())
            if dangling:
                raise SystemExit(f'setup.py: broken symbolic links, fix them before building: {", ".join(dangling)}')
            destination = target / relative
            if destination.exists():
                shutil.rmtree(destination)
            # Symbolic links are followed: a role's file linked from elsewhere ships as a copy.
            shutil.copytree(source, destination, ignore=_skip)


setup(cmdclass={'build_py': BuildPyWithData})
