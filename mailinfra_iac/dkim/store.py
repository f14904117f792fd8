"""Private key storage on the controller, outside any repository.

Layout, under the store root::

    <root>/                                   0700 (created if missing)
      <client>/                               0700
        <domain>/                             0700
          <selector>.<algorithm>.key          0600  PEM, PKCS#8, unencrypted
          <selector>.<algorithm>.pub.txt      0644  the DKIM key record (TXT value) + newline
          rotation.json                       0644  rotation state (see rotation/statefile.py)

The root is ``$MAILINFRA_KEYS_DIR`` if set, else ``~/.local/share/mailinfra/keys``. A root inside
a git work tree is refused unless ``allow_inside_git=True``: private keys must not end up in a
repository. That covers work trees with a ``.git`` entry and work trees named by ``GIT_WORK_TREE`` /
``GIT_DIR`` (a bare repository used as "dotfiles in the home directory"), see :func:`find_git_env_work_tree`.
Files are written atomically (see :func:`._fs.atomic_write`); a private key file is 0600 from
the moment it is created.

The private key file is the source of truth: the public record, bits and fingerprint in a
:class:`KeyRef` are always derived from it. :class:`KeyRef` never holds private key bytes.
Publishing needs only the public half: :meth:`KeyStore.public_record` reads the ``.pub.txt`` file
and never opens the private key, so DNS can be rendered where the private keys are absent.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import _fs
from .errors import (
    InsecureKeyFileError,
    InvalidNameError,
    KeyExistsError,
    KeyFileError,
    KeyMismatchError,
    KeyNotFoundError,
    KeySizeError,
    KeyStoreLocationError,
    RecordFormatError,
)
from .keys import (
    MIN_RSA_BITS,
    KeyAlgorithm,
    PrivateKey,
    fingerprint,
    generate_private_key,
    key_algorithm,
    key_bits,
    load_private_key_pem,
    parse_algorithm,
    private_key_pem,
    public_txt_value,
    record_key,
    record_public_key,
)

__all__ = [
    'KEYS_DIR_ENV',
    'KeyRef',
    'KeyStore',
    'check_client',
    'check_domain',
    'check_selector',
    'default_keys_root',
    'find_git_env_work_tree',
    'find_git_work_tree',
]

logger = logging.getLogger(__name__)

KEYS_DIR_ENV = 'MAILINFRA_KEYS_DIR'
KEY_SUFFIX = '.key'
PUBLIC_SUFFIX = '.pub.txt'

_CLIENT = re.compile(r'^[a-z0-9][a-z0-9_-]{0,62}$')
_LABEL = re.compile(r'^(?!-)[a-z0-9_-]{1,63}(?<!-)$')
_SELECTOR = re.compile(r'^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$')


def check_client(client: str) -> str:
    """Return the client name if it is usable as a directory name, else raise."""
    if not isinstance(client, str) or not _CLIENT.match(client):
        raise InvalidNameError(f'invalid client name "{client}", expected lower-case letters, digits, "_" and "-"')
    return client


def check_domain(domain: str) -> str:
    """Return the domain in canonical form (lower case, no trailing dot), or raise."""
    if not isinstance(domain, str):
        raise InvalidNameError(f'invalid domain {domain!r}, expected a DNS name such as "example.com"')
    name = domain.strip().lower().removesuffix('.')
    if not name.isascii():
        raise InvalidNameError(f'invalid domain "{domain}", write internationalised names in "xn--" form')
    labels = name.split('.')
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidNameError(f'invalid domain "{domain}", expected a DNS name such as "example.com"')
    return name


def check_selector(selector: str) -> str:
    """Return the selector if it is one DNS label (lower case letters, digits, "-"), else raise."""
    if not isinstance(selector, str) or not _SELECTOR.match(selector):
        raise InvalidNameError(f'invalid DKIM selector "{selector}", expected a DNS label such as "s2026q4"')
    return selector


def default_keys_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$MAILINFRA_KEYS_DIR`` if set and not empty, else ``~/.local/share/mailinfra/keys``."""
    env = os.environ if environ is None else environ
    value = env.get(KEYS_DIR_ENV, '').strip()
    if value:
        return Path(value).expanduser()
    return Path.home() / '.local' / 'share' / 'mailinfra' / 'keys'


def find_git_work_tree(path: str | Path) -> Path | None:
    """The nearest directory at or above ``path`` that holds a ``.git`` entry, if any.

    ``.git`` may be a directory (a normal clone) or a file (a linked work tree or a submodule).
    ``path`` need not exist yet.
    """
    current = Path(path).expanduser().resolve()
    for directory in (current, *current.parents):
        if (directory / '.git').exists():
            return directory
    return None


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def find_git_env_work_tree(path: str | Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """The work tree that ``GIT_DIR`` / ``GIT_WORK_TREE`` give git commands run here, if it holds ``path``.

    A bare repository used through ``GIT_WORK_TREE`` (``GIT_DIR=~/.dotfiles GIT_WORK_TREE=~``) has no
    ``.git`` entry to find. Where git is installed, ``git rev-parse --show-toplevel`` answers with
    git's own rules (``core.worktree``, a bare repository); ``GIT_WORK_TREE`` counts in any case, and
    without git, ``GIT_DIR`` alone makes the current directory the top of the work tree.
    """
    env = os.environ if environ is None else environ
    git_dir, work_tree = env.get('GIT_DIR', '').strip(), env.get('GIT_WORK_TREE', '').strip()
    if not git_dir and not work_tree:
        return None
    target = Path(path).expanduser().resolve()
    candidates = [Path(work_tree).expanduser().resolve()] if work_tree else []
    git = shutil.which('git', path=env.get('PATH'))
    if git is not None:
        try:
            result = subprocess.run(
                [git, 'rev-parse', '--show-toplevel'],
                env=dict(env),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            result = None
        if result is not None and result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()).resolve())
    elif not work_tree:
        candidates.append(Path.cwd().resolve())
    return next((directory for directory in candidates if _inside(target, directory)), None)


@dataclass(frozen=True)
class KeyRef:
    """Where a key is and what it publishes. Never holds private key bytes.

    Its ``repr`` and ``str`` name the key by client, domain, selector, algorithm and
    fingerprint; the key record is left out of both.
    """

    client: str
    domain: str
    selector: str
    algorithm: KeyAlgorithm
    bits: int
    path: Path
    """Private key file on the controller."""
    public_txt: str = field(repr=False)
    """The DKIM key record (TXT value, unsplit)."""
    fingerprint: str
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo."""

    @property
    def record_name(self) -> str:
        """Record name relative to the domain: ``<selector>._domainkey``."""
        return f'{self.selector}._domainkey'

    @property
    def fqdn(self) -> str:
        """``<selector>._domainkey.<domain>`` (no trailing dot)."""
        return f'{self.selector}._domainkey.{self.domain}'

    @property
    def public_path(self) -> Path:
        """The ``.pub.txt`` file next to the private key."""
        return self.path.with_name(f'{self.selector}.{self.algorithm.value}{PUBLIC_SUFFIX}')

    @property
    def key_ref(self) -> str:
        """Path of the private key relative to the store root: ``<client>/<domain>/<selector>.<alg>.key``."""
        return f'{self.client}/{self.domain}/{self.selector}.{self.algorithm.value}{KEY_SUFFIX}'

    def inventory_reference(self) -> dict[str, str | int]:
        """What an Ansible inventory may carry about this key: a reference, no key bytes.

        ``key_ref`` is relative to the key store root (portable between controllers),
        ``key_path`` absolute on this controller. The role copies the file to the MTA with
        ``no_log``.
        """
        return {
            'client': self.client,
            'domain': self.domain,
            'selector': self.selector,
            'algorithm': self.algorithm.value,
            'bits': self.bits,
            'key_ref': self.key_ref,
            'key_path': str(self.path),
            'fingerprint': self.fingerprint,
        }

    def __str__(self) -> str:
        return f'{self.algorithm.value} key {self.fqdn} of {self.client} ({self.bits} bits, {self.fingerprint})'


class KeyStore:
    """DKIM private keys of every client, one directory per client and domain."""

    def __init__(self, root: str | Path | None = None, *, allow_inside_git: bool = False) -> None:
        """Open (but do not create) the store.

        Args:
            root: store directory; default :func:`default_keys_root`.
            allow_inside_git: accept a root inside a git work tree (for throw-away test setups).

        Raises:
            KeyStoreLocationError: the root is inside a git work tree and that was not allowed.
        """
        chosen = default_keys_root() if root is None else Path(root).expanduser()
        self.root: Path = chosen.resolve()
        if allow_inside_git:
            return
        advice = (
            f'and keys must not end up in a repository. Set {KEYS_DIR_ENV} to a '
            'directory outside any repository (default ~/.local/share/mailinfra/keys)'
        )
        work_tree = find_git_work_tree(self.root)
        if work_tree is not None:
            raise KeyStoreLocationError(
                f'refusing to keep DKIM private keys in {self.root}: it is inside the git work tree '
                f'{work_tree}, {advice}'
            )
        env_tree = find_git_env_work_tree(self.root)
        if env_tree is not None:
            git_dir = os.environ.get('GIT_DIR', '').strip() or 'the repository git finds here'
            raise KeyStoreLocationError(
                f'refusing to keep DKIM private keys in {self.root}: it is inside the git work tree {env_tree} '
                f'of {git_dir}, which GIT_DIR/GIT_WORK_TREE select (a bare repository with a separate work '
                f'tree, such as dotfiles kept in the home directory), {advice}'
            )

    def __repr__(self) -> str:
        return f'KeyStore({str(self.root)!r})'

    # Paths ---------------------------------------------------------------------------------

    def domain_dir(self, client: str, domain: str) -> Path:
        """``<root>/<client>/<domain>`` (not created)."""
        return self.root / check_client(client) / check_domain(domain)

    def key_path(self, client: str, domain: str, selector: str, algorithm: str | KeyAlgorithm) -> Path:
        """Path of the private key file (which need not exist)."""
        alg = parse_algorithm(algorithm)
        return self.domain_dir(client, domain) / f'{check_selector(selector)}.{alg.value}{KEY_SUFFIX}'

    def exists(self, client: str, domain: str, selector: str, algorithm: str | KeyAlgorithm) -> bool:
        """Whether the private key file exists."""
        return self.key_path(client, domain, selector, algorithm).exists()

    # Reading -------------------------------------------------------------------------------

    def get(self, client: str, domain: str, selector: str, algorithm: str | KeyAlgorithm) -> KeyRef:
        """Load the key's reference.

        Raises:
            KeyNotFoundError: no such key.
            InsecureKeyFileError: the key file or its directory is accessible by other users.
            KeyFileError: the file is not an RSA or Ed25519 PEM key of the expected type.
            KeySizeError: an RSA key shorter than 2048 bits.
            KeyMismatchError: the ``.pub.txt`` file does not match the private key.
        """
        alg = parse_algorithm(algorithm)
        path = self.key_path(client, domain, selector, alg)
        key = self._read_key(path, alg)
        ref = _make_ref(check_client(client), check_domain(domain), selector, path, key)
        self._check_public_file(ref)
        return ref

    def public_record(self, client: str, domain: str, selector: str, algorithm: str | KeyAlgorithm) -> str | None:
        """The DKIM key record (TXT value) of a key, from its ``.pub.txt`` file; ``None`` if there is no key.

        Never opens the private key, which need not even be present: what DNS publishes is public.
        The file is checked to hold a record of the right algorithm with a valid public key.

        Raises:
            KeyFileError: the ``.pub.txt`` file is missing next to a private key, unreadable, or not such a record.
        """
        alg = parse_algorithm(algorithm)
        path = self.key_path(client, domain, selector, alg)
        public = path.with_name(f'{selector}.{alg.value}{PUBLIC_SUFFIX}')
        try:
            text = public.read_text(encoding='ascii').strip()
        except FileNotFoundError:
            if path.exists():
                raise KeyFileError(
                    f'public record file {public} is missing next to the private key; '
                    '`mailinfra dkim generate SPEC` writes it again from the key'
                ) from None
            return None
        except (OSError, UnicodeDecodeError):
            raise KeyFileError(f'cannot read public record file {public}') from None
        try:
            found, material = record_key(text)
            valid = found is alg and bool(material) and record_public_key(text) is not None
        except RecordFormatError as error:
            raise KeyFileError(f'public record file {public}: {error}') from None
        if not valid:
            raise KeyFileError(f'public record file {public} does not publish a {alg.value} key')
        return text

    def public_ref(self, client: str, domain: str, selector: str, algorithm: str | KeyAlgorithm) -> KeyRef | None:
        """Like :meth:`find`, from the ``.pub.txt`` file alone (see :meth:`public_record`): no private key is opened."""
        alg = parse_algorithm(algorithm)
        text = self.public_record(client, domain, selector, alg)
        if text is None:
            return None
        public = record_public_key(text)
        assert public is not None  # public_record refuses revoked records
        return KeyRef(
            client=check_client(client),
            domain=check_domain(domain),
            selector=selector,
            algorithm=alg,
            bits=key_bits(public),
            path=self.key_path(client, domain, selector, alg),
            public_txt=text,
            fingerprint=fingerprint(public),
        )

    def find(self, client: str, domain: str, selector: str, algorithm: str | KeyAlgorithm) -> KeyRef | None:
        """Like :meth:`get`, but ``None`` if the key does not exist."""
        try:
            return self.get(client, domain, selector, algorithm)
        except KeyNotFoundError:
            return None

    def list_keys(self, client: str | None = None, domain: str | None = None) -> list[KeyRef]:
        """Every key in the store (or of one client, or one client's domain), sorted.

        Sorted by client, domain, selector, algorithm. Files not following the layout are skipped.
        """
        if domain is not None and client is None:
            raise InvalidNameError('listing the keys of a domain needs the client too')
        refs: list[KeyRef] = []
        for client_dir in self._subdirs(self.root, client, check_client):
            for domain_dir in self._subdirs(client_dir, domain, check_domain):
                for path in sorted(domain_dir.glob(f'*{KEY_SUFFIX}')):
                    parsed = _parse_key_name(path.name)
                    if parsed is None:
                        logger.debug('skipping %s: not a key file of this store', path)
                        continue
                    selector, alg = parsed
                    refs.append(self.get(client_dir.name, domain_dir.name, selector, alg))
        return sorted(refs, key=lambda r: (r.client, r.domain, r.selector, r.algorithm.value))

    # Writing -------------------------------------------------------------------------------

    def create(
        self,
        client: str,
        domain: str,
        selector: str,
        algorithm: str | KeyAlgorithm = KeyAlgorithm.RSA,
        *,
        bits: int | None = None,
    ) -> KeyRef:
        """Generate and store a new key.

        Raises:
            KeyExistsError: a key with this selector and algorithm already exists.
            KeySizeError: ``bits`` below 2048 (RSA) or not 256 (Ed25519).
        """
        alg = parse_algorithm(algorithm)
        path = self.key_path(client, domain, selector, alg)
        if path.exists():
            raise KeyExistsError(
                f'a {alg.value} key for selector "{selector}" of {domain} ({client}) already exists at '
                f'{path}; selectors are never reused, pick a new one'
            )
        key = generate_private_key(alg, bits)
        self._prepare_dirs(path.parent)
        _fs.atomic_write(path, private_key_pem(key), _fs.PRIVATE_FILE_MODE)
        ref = _make_ref(check_client(client), check_domain(domain), selector, path, key)
        _fs.atomic_write(ref.public_path, (ref.public_txt + '\n').encode('ascii'), _fs.PUBLIC_FILE_MODE)
        logger.info('generated %s', ref)
        return ref

    def ensure(
        self,
        client: str,
        domain: str,
        selector: str,
        algorithm: str | KeyAlgorithm = KeyAlgorithm.RSA,
        *,
        bits: int | None = None,
    ) -> KeyRef:
        """Return the key, generating it only if it does not exist yet (idempotent).

        Raises:
            KeyMismatchError: the key exists but ``bits`` was given and differs.
        """
        alg = parse_algorithm(algorithm)
        existing = self.find(client, domain, selector, alg)
        if existing is None:
            try:
                return self.create(client, domain, selector, alg, bits=bits)
            except KeyExistsError:  # created concurrently
                existing = self.get(client, domain, selector, alg)
        if bits is not None and existing.bits != bits:
            raise KeyMismatchError(
                f'{existing} already exists with {existing.bits} bits, but {bits} bits were requested; '
                'use a new selector to change the key size'
            )
        return existing

    def delete(self, client: str, domain: str, selector: str, algorithm: str | KeyAlgorithm) -> None:
        """Delete a key's files (private key and ``.pub.txt``). Missing files are ignored."""
        path = self.key_path(client, domain, selector, algorithm)
        public = path.with_name(path.name.removesuffix(KEY_SUFFIX) + PUBLIC_SUFFIX)
        for victim in (path, public):
            victim.unlink(missing_ok=True)
        logger.info('deleted key files of selector %s of %s (%s)', selector, domain, client)

    # Internals -----------------------------------------------------------------------------

    def prepare_domain_dir(self, client: str, domain: str) -> Path:
        """Create ``<root>/<client>/<domain>`` with mode 0700 if needed, and return it."""
        domain_dir = self.domain_dir(client, domain)
        self._prepare_dirs(domain_dir)
        return domain_dir

    def _prepare_dirs(self, domain_dir: Path) -> None:
        _fs.make_private_dir(domain_dir)
        for directory in (domain_dir.parent, domain_dir):
            if _fs.tighten_dir(directory):
                logger.warning('removed group and other permissions from %s', directory)

    @staticmethod
    def _subdirs(parent: Path, only: str | None, check: Callable[[str], str]) -> list[Path]:
        if only is not None:
            candidate = parent / check(only)
            return [candidate] if candidate.is_dir() else []
        if not parent.is_dir():
            return []
        return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith('.'))

    def check_private_file(self, client: str, domain: str, selector: str, algorithm: str | KeyAlgorithm) -> Path:
        """The private key file, if it exists and only its owner can reach it; its content is not read.

        Raises:
            KeyNotFoundError: no such file.
            KeyFileError: not a regular file.
            InsecureKeyFileError: the file or its directory is accessible by other users.
        """
        alg = parse_algorithm(algorithm)
        path = self.key_path(client, domain, selector, alg)
        self._check_private_file(path, alg)
        return path

    @staticmethod
    def _check_private_file(path: Path, alg: KeyAlgorithm) -> None:
        try:
            info = path.stat()
        except FileNotFoundError:
            raise KeyNotFoundError(f'no {alg.value} key at {path}') from None
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f'{path} is not a regular file')
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise InsecureKeyFileError(
                f'private key file {path} is accessible by other users (mode {mode:04o}); '
                f'run "chmod 600 {path}" and check who may have read it'
            )
        dir_mode = stat.S_IMODE(path.parent.stat().st_mode)
        if dir_mode & 0o077:
            raise InsecureKeyFileError(
                f'key directory {path.parent} is accessible by other users (mode {dir_mode:04o}); '
                f'run "chmod 700 {path.parent}"'
            )

    @classmethod
    def _read_key(cls, path: Path, alg: KeyAlgorithm) -> PrivateKey:
        cls._check_private_file(path, alg)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise KeyFileError(f'cannot read private key file {path}: {error.strerror}') from None
        key = load_private_key_pem(data, source=str(path))
        found = key_algorithm(key)
        if found is not alg:
            raise KeyFileError(f'{path} holds an {found.value} key, expected {alg.value}')
        bits = key_bits(key)
        if found is KeyAlgorithm.RSA and bits < MIN_RSA_BITS:
            raise KeySizeError(
                f'{path} holds a {bits}-bit RSA key; DKIM keys must have at least {MIN_RSA_BITS} bits, '
                'generate a new key under a new selector'
            )
        return key

    @staticmethod
    def _check_public_file(ref: KeyRef) -> None:
        public = ref.public_path
        try:
            text = public.read_text(encoding='ascii').strip()
        except FileNotFoundError:
            _fs.atomic_write(public, (ref.public_txt + '\n').encode('ascii'), _fs.PUBLIC_FILE_MODE)
            logger.info('rewrote missing public record file %s', public)
            return
        except (OSError, UnicodeDecodeError):
            raise KeyFileError(f'cannot read public record file {public}') from None
        if text != ref.public_txt:
            raise KeyMismatchError(
                f'public record file {public} does not match the private key {ref.path} '
                f'({ref.fingerprint}); delete the .pub.txt file to have it rewritten from the key'
            )


def _make_ref(client: str, domain: str, selector: str, path: Path, key: PrivateKey) -> KeyRef:
    return KeyRef(
        client=client,
        domain=domain,
        selector=selector,
        algorithm=key_algorithm(key),
        bits=key_bits(key),
        path=path,
        public_txt=public_txt_value(key),
        fingerprint=fingerprint(key),
    )


def _parse_key_name(name: str) -> tuple[str, KeyAlgorithm] | None:
    if name.startswith('.'):
        return None
    stem = name.removesuffix(KEY_SUFFIX)
    selector, _, alg = stem.rpartition('.')
    if not _SELECTOR.match(selector) or alg not in {a.value for a in KeyAlgorithm}:
        return None
    return selector, KeyAlgorithm(alg)
