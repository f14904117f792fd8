"""Secrets the contract names: files of mode 0600 (or stricter), never values in the contract itself."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_SECRET = 64 * 1024
"""Bytes read at most: a key, a password or a certificate's key is far shorter."""


class SecretFileError(Exception):
    """A secret file that is missing, unreadable, not a regular file, empty, too large or readable by others."""


def read_secret_file(path: str | Path) -> str:
    """The file's content without surrounding white space; refused if group or others may access it."""
    try:
        # O_NONBLOCK: a FIFO in its place would block the open until something writes to it.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            mode = os.fstat(descriptor).st_mode
            if not stat.S_ISREG(mode):
                raise SecretFileError(f'{path}: the secret file is not a regular file')
            if stat.S_IMODE(mode) & 0o077:
                raise SecretFileError(
                    f'{path}: mode {stat.S_IMODE(mode):04o} lets group or others read a secret; make it 0600'
                )
            data = b''
            while len(data) <= MAX_SECRET and (chunk := os.read(descriptor, MAX_SECRET + 1 - len(data))):
                data += chunk
            if len(data) > MAX_SECRET:
                raise SecretFileError(f'{path}: the secret file is larger than {MAX_SECRET} bytes')
            value = data.decode('utf-8').strip()
        finally:
            os.close(descriptor)
    except OSError as error:
        raise SecretFileError(f'{path}: cannot read the secret file: {error.strerror or error}') from None
    except UnicodeDecodeError:
        raise SecretFileError(f'{path}: the secret file is not UTF-8 text') from None
    if not value:
        raise SecretFileError(f'{path}: the secret file is empty')
    return value
