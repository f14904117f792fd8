"""Replacing a file the way every host service here does it: a temporary file beside it, then one rename.

A reader (Postfix, PowerMTA, an ``ansible`` run) sees the old bytes or the new ones, never a half-written file, and a
crash leaves at most a hidden temporary file (``.<name>.*``) behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ['replace_file']


def replace_file(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    like: str | os.PathLike[str] | None = None,
    mode: int | None = None,
    before_rename: Callable[[str], None] | None = None,
) -> None:
    """Give ``path`` the bytes ``data`` with one rename, then sync its directory.

    The new file gets ``mode`` when it is given (owned by the caller); otherwise the mode, and as root the owner, of
    ``like`` (default: ``path`` itself) when that exists, else 0644. ``before_rename`` is called with the temporary
    file's name just before the rename.
    """
    target = Path(path)
    reference = Path(like) if like is not None else target
    handle, temporary = tempfile.mkstemp(prefix=f'.{target.name}.', dir=target.parent)
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(data)
            out.flush()
            if mode is None and reference.exists():
                status = reference.stat()
                os.fchmod(out.fileno(), status.st_mode & 0o7777)
                if os.geteuid() == 0:
                    os.fchown(out.fileno(), status.st_uid, status.st_gid)
            else:
                os.fchmod(out.fileno(), 0o644 if mode is None else mode)
            os.fsync(out.fileno())
        if before_rename is not None:
            before_rename(temporary)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    descriptor = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
