"""The contract's VERP and unsubscribe-token keys, read from their 0600 files."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..contract import Contract

__all__ = ['signing_keys']


def signing_keys(contract: Contract) -> tuple[bytes, ...]:
    """The VERP/token keys (the signing key first, then the old ones); () when the contract names none.

    Raises ValueError (``signing.KeyFileError``) when a named key file cannot be used.
    """
    from ..feedback.signing import read_key_file

    suppression = contract.suppression
    if suppression.signing_key_file is None:
        return ()
    paths = (suppression.signing_key_file, *suppression.old_signing_key_files)
    return tuple(read_key_file(path) for path in paths)
