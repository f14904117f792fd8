"""Small file-system helpers: private directories and atomic writes."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

__all__ = ['PRIVATE_DIR_MODE', 'PRIVATE_FILE_MODE', 'PUBLIC_FILE_MODE', 'atomic_write', 'make_private_dir']

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644

TEMP_SUFFIX = '.tmp'


def make_private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents with mode 0700.

    ``Path.mkdir(parents=True)`` would create the parents with the default mode, so each
    missing level is created here on its own. A directory that already exists is left as it is.
    """
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        # mkdir's mode is filtered through the umask; set it exactly.
        os.chmod(directory, PRIVATE_DIR_MODE)


def tighten_dir(path: Path) -> bool:
    """Remove group and other permissions from an existing directory; True if it changed."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, mode & 0o700)
        return True
    return False


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The temporary file is created by :func:`tempfile.mkstemp`, which opens it with ``O_EXCL``
    and mode 0600, so private data is never readable by other users, not even for a moment.
    Its mode is set to ``mode`` before it is renamed over ``path`` with :func:`os.replace`.
    On any error the temporary file is removed.
    """
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix=TEMP_SUFFIX, dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse fsync on directories
        pass
    finally:
        os.close(fd)
