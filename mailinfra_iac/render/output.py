"""Write a whole render atomically: a complete new tree replaces the old one, or nothing changes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from ..problems import MailinfraError
from .base import OutputFile

MARKER = '.mailinfra-render'
"""File that marks a directory as ours, so a render never replaces a directory it did not create."""


class OutputError(MailinfraError):
    """The output directory cannot be written."""


def _safe_relative(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or '..' in relative.parts or not relative.parts:
        raise OutputError(f'refusing to write outside the output directory: {path}')
    return relative


def write_tree(files: Mapping[str, OutputFile], out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``files`` as the complete content of ``out_dir``.

    The tree is built in a sibling temporary directory and swapped in with renames, so a crash
    leaves either the old tree or the new one. An existing directory is replaced only if an
    earlier render created it (it holds ``.mailinfra-render``) or ``force`` is given.
    """
    target = Path(out_dir).absolute()
    if target.exists() and not target.is_dir():
        raise OutputError(f'{target} exists and is not a directory')
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).exists() and not force:
        raise OutputError(
            f'{target} is not empty and was not written by mailinfra render; choose another directory or --force'
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f'.{target.name}.new-', dir=target.parent))
    try:
        for path, output in sorted(files.items()):
            destination = staging / _safe_relative(path)
            destination.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, output.mode)
            with os.fdopen(descriptor, 'wb') as handle:
                handle.write(output.content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(destination, output.mode)
        (staging / MARKER).write_text('This directory is replaced as a whole by `mailinfra render`.\n')
        os.chmod(staging, 0o755)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f'.{target.name}.old-', dir=target.parent))
            os.rename(target, retired / 'tree')
            try:
                os.rename(staging, target)
            except OSError:
                os.rename(retired / 'tree', target)
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
