"""Errors raised by the DKIM key management package.

Messages name the client, domain, selector, path or fingerprint involved, and never contain
private key material.
"""

from __future__ import annotations

from ..problems import MailinfraError

__all__ = [
    'DkimError',
    'DnsQueryError',
    'IllegalTransitionError',
    'InsecureKeyFileError',
    'InvalidNameError',
    'KeyExistsError',
    'KeyFileError',
    'KeyMismatchError',
    'KeyNotFoundError',
    'KeySizeError',
    'KeyStoreLocationError',
    'OverlapWindowError',
    'RecordFormatError',
    'RotationFileError',
    'SelectorError',
    'VerificationError',
]


class DkimError(MailinfraError):
    """Base class of every error raised by :mod:`mailinfra_iac.dkim`."""


class KeySizeError(DkimError, ValueError):
    """An RSA key size outside the accepted range was requested or found."""


class InvalidNameError(DkimError, ValueError):
    """A client, domain, selector or algorithm name that cannot be used."""


class KeyStoreLocationError(DkimError):
    """The key store root is somewhere keys must not be kept (inside a git work tree)."""


class KeyExistsError(DkimError):
    """A key for this client, domain, selector and algorithm already exists."""


class KeyNotFoundError(DkimError, LookupError):
    """No key for this client, domain, selector and algorithm."""


class KeyFileError(DkimError):
    """A key file that cannot be read or parsed."""


class InsecureKeyFileError(KeyFileError):
    """A private key file or key directory readable by other users."""


class KeyMismatchError(DkimError):
    """Two things that must describe the same key do not (public record file, rotation state)."""


class RecordFormatError(DkimError, ValueError):
    """A DKIM key record (TXT value) that cannot be parsed."""


class SelectorError(DkimError, ValueError):
    """A rotation period or selector name that cannot be used."""


class RotationFileError(DkimError):
    """A rotation state file that cannot be read."""


class IllegalTransitionError(DkimError):
    """A rotation step that is not allowed from the selector's current state."""


class OverlapWindowError(DkimError):
    """A retiring key cannot be revoked yet: its overlap window has not passed."""


class VerificationError(DkimError):
    """The authoritative servers do not all answer with the expected key record."""


class DnsQueryError(DkimError):
    """One or more name servers did not give a usable answer."""
