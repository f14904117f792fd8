"""Secrets the contract names: files of mode 0600 (or stricter), never values in the contract itself."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretFileError(Exception):
    """A secret file that is missing, unreadable, empty or readable by others."""


def read_secret_file(path: str | Path) -> str:
    """The file's content without surrounding white space; refused if group or others may access it."""
    try:
        with open(path, encoding='utf-8') as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_IMODE(mode) & 0o077:
                raise SecretFileError(
                    f'{path}: mode {stat.S_IMODE(mode):04o} lets group or others read a secret; make it 0600'
                )
            value = handle.read().strip()
    except OSError as error:
        raise SecretFileError(f'{path}: cannot read the secret file: {error.strerror or error}') from None
    except UnicodeDecodeError:
        raise SecretFileError(f'{path}: the secret file is not UTF-8 text') from None
    if not value:
        raise SecretFileError(f'{path}: the secret file is empty')
    return value
