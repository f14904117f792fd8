"""Write a whole render atomically: a complete new tree replaces the old one, or nothing changes.

The new tree is built in a sibling staging directory ``.<name>.new-XXXXXXXX`` and swapped with the
old one by ``renameat2(RENAME_EXCHANGE)``, so the output path never stops existing. Where the
kernel or the file system cannot exchange, two renames are used (the path is then missing for the
moment between them).

A staging directory holds ``.mailinfra-render`` from its creation on and is ``flock``-ed by the
render that owns it for as long as it lives. A render that was killed leaves it unlocked: the next
render into the same output removes every sibling that has our name pattern, our marker, and no lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from ..problems import MailinfraError
from .base import OutputFile

MARKER = '.mailinfra-render'
"""File that marks a directory as ours, so a render never replaces a directory it did not create."""
MARKER_TEXT = 'This directory is replaced as a whole by `mailinfra render`.\n'

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100

Progress = Callable[[int, int], None]
"""Called with (files written, files in all) while the tree is written."""


class OutputError(MailinfraError):
    """The output directory cannot be written."""


def _safe_relative(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or '..' in relative.parts or not relative.parts:
        raise OutputError(f'refusing to write outside the output directory: {path}')
    return relative


def _staging_pattern(target: Path) -> re.Pattern[str]:
    # tempfile.mkdtemp names: prefix + 8 characters of [a-z0-9_]
    return re.compile(rf'^\.{re.escape(target.name)}\.(?:new|old)-[a-z0-9_]{{8}}$')


def _lock(directory: Path, *, wait: bool) -> int | None:
    """An exclusive ``flock`` on ``directory``: its descriptor, or None if another process holds it."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _remove(directory: Path) -> None:
    """Delete a tree, its marker last, so that a tree interrupted half-way is still recognised as ours.

    A symbolic link (an output path that was a link to a directory) is removed, never followed.
    """
    if directory.is_symlink():
        directory.unlink()
        return
    for child in directory.iterdir():
        if child.name == MARKER:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
    with contextlib.suppress(FileNotFoundError):
        (directory / MARKER).unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()


def clean_stale(target: Path) -> list[Path]:
    """Remove staging directories of ``target`` that renders killed before they finished; return them.

    Only siblings named ``.<name>.new-*`` or ``.<name>.old-*`` that hold our marker and that no live
    process has locked are removed.
    """
    pattern = _staging_pattern(target)
    removed = []
    try:
        candidates = sorted(target.parent.iterdir())
    except FileNotFoundError:
        return []
    for candidate in candidates:
        if not pattern.match(candidate.name) or candidate.is_symlink() or not candidate.is_dir():
            continue
        if not (candidate / MARKER).is_file():
            continue
        try:
            fd = _lock(candidate, wait=False)
        except OSError:  # vanished or unreadable: not ours to judge
            continue
        if fd is None:  # a render is writing it right now
            continue
        try:
            _remove(candidate)
        finally:
            os.close(fd)
        removed.append(candidate)
    return removed


def _load_renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with ``renameat2(RENAME_EXCHANGE)``; False where that is not supported."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(first), None, str(second))


def _retire(old_tree: Path) -> None:
    """Delete the tree that was swapped out. Another render's cleaning may have got there first."""
    with contextlib.suppress(OSError):
        if old_tree.is_symlink():
            old_tree.unlink()
            return
        # mark it, so that it is recognised as ours if we die while deleting it (it may come from --force)
        if not (old_tree / MARKER).exists():
            (old_tree / MARKER).write_text(MARKER_TEXT)
        fd = _lock(old_tree, wait=True)
        try:
            _remove(old_tree)
        finally:
            if fd is not None:
                os.close(fd)


def _swap_by_renames(staging: Path, target: Path) -> None:
    retired = Path(tempfile.mkdtemp(prefix=f'.{target.name}.old-', dir=target.parent))
    fd = _lock(retired, wait=True)
    try:
        (retired / MARKER).write_text(MARKER_TEXT)
        os.rename(target, retired / 'tree')
        try:
            os.rename(staging, target)
        except OSError:
            os.rename(retired / 'tree', target)
            raise
        _remove(retired)
    finally:
        if fd is not None:
            os.close(fd)


def keep_terraform_state(target: Path) -> None:
    """Refuse to replace ``target`` while its terraform/ holds local state: the swap deletes the old tree as a
    whole, and Terraform without its state would create every server and address again."""
    directory = target / 'terraform'
    found = [directory / 'terraform.tfstate', directory / 'terraform.tfstate.d']  # the default and other workspaces
    found += sorted(directory.glob('*.tfstate.backup')) if directory.is_dir() else []
    for state in found:
        if state.exists():
            raise OutputError(
                f'{state} holds Terraform state, which rendering into {target} would delete (the directory is '
                'replaced as a whole): move it into a backend first (terraform init -migrate-state with the backend '
                'added, or terraform state push), then plan with --backend-file (docs/terraform-ci.md, "State")'
            )


def write_tree(
    files: Mapping[str, OutputFile],
    out_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Write ``files`` as the complete content of ``out_dir``.

    The tree is built in a sibling staging directory and swapped in atomically, so a crash leaves
    either the old tree or the new one, and readers never find the path missing (see the module
    docstring). An existing directory is replaced only if an earlier render created it (it holds
    ``.mailinfra-render``) or ``force`` is given, and never while it holds Terraform state (not even with
    ``force``). Staging directories left by killed renders are removed first.
    """
    keep_terraform_state(Path(out_dir))
    target = Path(out_dir).absolute()
    if target.exists() and not target.is_dir():
        raise OutputError(f'{target} exists and is not a directory')
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).exists() and not force:
        raise OutputError(
            f'{target} is not empty and was not written by mailinfra render; choose another directory or --force'
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    staging = Path(tempfile.mkdtemp(prefix=f'.{target.name}.new-', dir=target.parent))
    lock = _lock(staging, wait=True)
    assert lock is not None
    try:
        # The marker first: from now on a killed render leaves a directory the next one recognises.
        (staging / MARKER).write_text(MARKER_TEXT)
        total = len(files)
        for done, (path, output) in enumerate(sorted(files.items()), 1):
            destination = staging / _safe_relative(path)
            destination.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, output.mode)
            with os.fdopen(descriptor, 'wb') as handle:
                handle.write(output.content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(destination, output.mode)
            if progress is not None:
                progress(done, total)
        os.chmod(staging, 0o755)
        if not target.exists():
            os.rename(staging, target)
        elif exchange(staging, target):
            _retire(staging)
        else:
            _swap_by_renames(staging, target)
    except BaseException:
        if staging.exists():
            _remove(staging)
        raise
    finally:
        os.close(lock)
    return target
