"""KeyStore: layout, file modes, atomic writes, git work tree refusal, listing, no key leaks."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra_iac.dkim import (
    KEYS_DIR_ENV,
    InsecureKeyFileError,
    InvalidNameError,
    KeyAlgorithm,
    KeyExistsError,
    KeyFileError,
    KeyMismatchError,
    KeyNotFoundError,
    KeyRef,
    KeySizeError,
    KeyStore,
    KeyStoreLocationError,
    _fs,
    default_keys_root,
    find_git_work_tree,
    fingerprint,
    load_public_key,
    public_txt_value,
)
from mailinfra_iac.dkim.keys import generate_private_key, private_key_pem
from mailinfra_iac.dkim.store import find_git_env_work_tree


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def pem_body(path: Path) -> list[str]:
    """The base64 lines of a PEM file: what must never show up anywhere."""
    return [line for line in path.read_text().splitlines() if line and not line.startswith('-----')]


# Default location ------------------------------------------------------------------------------


def test_default_root_from_environment(tmp_path: Path) -> None:
    assert default_keys_root({KEYS_DIR_ENV: str(tmp_path / 'k')}) == tmp_path / 'k'


def test_default_root_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.delenv(KEYS_DIR_ENV, raising=False)
    assert default_keys_root() == tmp_path / '.local/share/mailinfra/keys'
    assert default_keys_root({KEYS_DIR_ENV: '  '}) == tmp_path / '.local/share/mailinfra/keys'
    assert KeyStore().root == (tmp_path / '.local/share/mailinfra/keys').resolve()


def test_store_uses_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(KEYS_DIR_ENV, str(tmp_path / 'elsewhere'))
    assert KeyStore().root == (tmp_path / 'elsewhere').resolve()


# Git work trees --------------------------------------------------------------------------------


def test_root_inside_git_work_tree_refused(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    repo.mkdir()
    subprocess.run(['git', 'init', '-q', str(repo)], check=True)
    with pytest.raises(KeyStoreLocationError, match=r'inside the git work tree .*repo.*MAILINFRA_KEYS_DIR'):
        KeyStore(repo / 'secrets' / 'keys')
    with pytest.raises(KeyStoreLocationError):
        KeyStore(repo)


def test_root_inside_linked_work_tree_refused(tmp_path: Path) -> None:
    tree = tmp_path / 'worktree'
    tree.mkdir()
    (tree / '.git').write_text('gitdir: /somewhere/else\n')
    assert find_git_work_tree(tree / 'a' / 'b') == tree.resolve()
    with pytest.raises(KeyStoreLocationError):
        KeyStore(tree / 'keys')


def test_repository_itself_refused() -> None:
    with pytest.raises(KeyStoreLocationError):
        KeyStore(Path(__file__).parent / 'keys')


def test_root_inside_git_work_tree_allowed_explicitly(tmp_path: Path) -> None:
    repo = tmp_path / 'repo'
    (repo / '.git').mkdir(parents=True)
    store = KeyStore(repo / 'keys', allow_inside_git=True)
    ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    assert ref.path.is_relative_to(repo.resolve())


def test_root_outside_git_accepted(tmp_path: Path) -> None:
    assert find_git_work_tree(tmp_path / 'keys') is None
    assert KeyStore(tmp_path / 'keys').root == (tmp_path / 'keys').resolve()


# Creating keys ---------------------------------------------------------------------------------


def test_layout_and_modes(store: KeyStore, keys_root: Path) -> None:
    ref = store.create('acme', 'Example.COM.', 's2026q4')
    domain_dir = keys_root / 'acme' / 'example.com'
    assert ref.path == domain_dir.resolve() / 's2026q4.rsa.key'
    assert ref.public_path == domain_dir.resolve() / 's2026q4.rsa.pub.txt'
    assert (ref.client, ref.domain, ref.selector, ref.algorithm, ref.bits) == (
        'acme',
        'example.com',
        's2026q4',
        KeyAlgorithm.RSA,
        2048,
    )
    assert mode(ref.path) == 0o600
    assert mode(ref.public_path) == 0o644
    for directory in (keys_root, keys_root / 'acme', domain_dir):
        assert mode(directory) == 0o700
    assert ref.path.read_bytes().startswith(b'-----BEGIN PRIVATE KEY-----\n')
    assert ref.public_path.read_text() == ref.public_txt + '\n'
    assert fingerprint(load_public_key(ref.path)) == ref.fingerprint
    assert public_txt_value(load_public_key(ref.path)) == ref.public_txt
    assert ref.fqdn == 's2026q4._domainkey.example.com'
    assert ref.record_name == 's2026q4._domainkey'


def test_modes_hold_with_permissive_umask(store: KeyStore, keys_root: Path) -> None:
    old = os.umask(0)
    try:
        ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    finally:
        os.umask(old)
    assert mode(ref.path) == 0o600
    assert mode(keys_root / 'acme') == 0o700
    assert mode(keys_root / 'acme' / 'example.com') == 0o700


def test_missing_parents_of_root_created_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / 'a' / 'b' / 'keys')
    store.create('acme', 'example.com', 's2026q4', 'ed25519')
    assert mode(tmp_path / 'a') == 0o700
    assert mode(tmp_path / 'a' / 'b' / 'keys') == 0o700


def test_loose_domain_directory_tightened(store: KeyStore, keys_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    domain_dir = keys_root / 'acme' / 'example.com'
    domain_dir.mkdir(parents=True)
    os.chmod(domain_dir, 0o755)
    with caplog.at_level(logging.WARNING, logger='mailinfra_iac.dkim'):
        store.create('acme', 'example.com', 's2026q4', 'ed25519')
    assert mode(domain_dir) == 0o700
    assert 'removed group and other permissions' in caplog.text


def test_temp_file_private_from_creation(store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []
    real_mkstemp = _fs.tempfile.mkstemp

    def spying_mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)  # type: ignore[call-overload]
        seen.append((name, stat.S_IMODE(os.stat(name).st_mode)))
        return fd, name

    monkeypatch.setattr(_fs.tempfile, 'mkstemp', spying_mkstemp)
    ref = store.create('acme', 'example.com', 's2026q4')
    key_temp = [m for name, m in seen if Path(name).name.startswith('.s2026q4.rsa.key.')]
    assert key_temp == [0o600]
    assert all(Path(name).parent == ref.path.parent for name, _ in seen)


def test_no_temp_files_left(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4')
    store.create('acme', 'example.com', 's2026q4e', 'ed25519')
    leftovers = [p.name for p in ref.path.parent.iterdir() if p.name.endswith(_fs.TEMP_SUFFIX)]
    assert leftovers == []
    assert sorted(p.name for p in ref.path.parent.iterdir()) == [
        's2026q4.rsa.key',
        's2026q4.rsa.pub.txt',
        's2026q4e.ed25519.key',
        's2026q4e.ed25519.pub.txt',
    ]


def test_failed_write_leaves_nothing(store: KeyStore, keys_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_replace(src: object, dst: object) -> None:
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(_fs.os, 'replace', failing_replace)
    with pytest.raises(OSError, match='No space left'):
        store.create('acme', 'example.com', 's2026q4', 'ed25519')
    assert list((keys_root / 'acme' / 'example.com').iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / 'f.txt'
    _fs.atomic_write(target, b'one', 0o644)
    _fs.atomic_write(target, b'two', 0o600)
    assert target.read_bytes() == b'two'
    assert mode(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ['f.txt']


def test_create_refuses_existing(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4')
    with pytest.raises(KeyExistsError, match=r'already exists .*never reused'):
        store.create('acme', 'example.com', 's2026q4')
    assert store.get('acme', 'example.com', 's2026q4', 'rsa').fingerprint == ref.fingerprint


def test_create_refuses_small_rsa(store: KeyStore, keys_root: Path) -> None:
    with pytest.raises(KeySizeError, match='at least 2048'):
        store.create('acme', 'example.com', 's2026q4', bits=1024)
    assert not (keys_root / 'acme' / 'example.com' / 's2026q4.rsa.key').exists()


@pytest.mark.parametrize(
    ('client', 'domain', 'selector', 'message'),
    [
        ('../etc', 'example.com', 's1', 'invalid client name'),
        ('Acme', 'example.com', 's1', 'invalid client name'),
        ('acme', 'example..com', 's1', 'invalid domain'),
        ('acme', '../example.com', 's1', 'invalid domain'),
        ('acme', 'exämple.com', 's1', 'xn--'),
        ('acme', 'example.com', 's1.rsa', 'invalid DKIM selector'),
        ('acme', 'example.com', '../s1', 'invalid DKIM selector'),
        ('acme', 'example.com', 'S1', 'invalid DKIM selector'),
    ],
)
def test_invalid_names_refused(store: KeyStore, client: str, domain: str, selector: str, message: str) -> None:
    with pytest.raises(InvalidNameError, match=message):
        store.create(client, domain, selector, 'ed25519')


# Reading keys ----------------------------------------------------------------------------------


def test_get_and_find(store: KeyStore) -> None:
    created = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    assert store.get('acme', 'example.com', 's2026q4', 'ed25519') == created
    assert store.find('acme', 'example.com', 's2026q4', 'rsa') is None
    assert store.exists('acme', 'example.com', 's2026q4', 'ed25519')
    with pytest.raises(KeyNotFoundError, match='no rsa key at'):
        store.get('acme', 'example.com', 's2026q4', 'rsa')


def test_get_refuses_readable_key_file(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    os.chmod(ref.path, 0o644)
    with pytest.raises(InsecureKeyFileError, match=r'accessible by other users \(mode 0644\).*chmod 600'):
        store.get('acme', 'example.com', 's2026q4', 'ed25519')


def test_get_refuses_readable_key_directory(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    os.chmod(ref.path.parent, 0o755)
    with pytest.raises(InsecureKeyFileError, match='chmod 700'):
        store.get('acme', 'example.com', 's2026q4', 'ed25519')


def test_get_refuses_small_rsa_key_placed_by_hand(store: KeyStore) -> None:
    path = store.key_path('acme', 'example.com', 's2026q4', 'rsa')
    store.prepare_domain_dir('acme', 'example.com')
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    _fs.atomic_write(path, private_key_pem(weak), 0o600)
    with pytest.raises(KeySizeError, match='1024-bit RSA key'):
        store.get('acme', 'example.com', 's2026q4', 'rsa')


def test_get_refuses_wrong_algorithm(store: KeyStore) -> None:
    path = store.key_path('acme', 'example.com', 's2026q4', 'rsa')
    store.prepare_domain_dir('acme', 'example.com')
    _fs.atomic_write(path, private_key_pem(generate_private_key('ed25519')), 0o600)
    with pytest.raises(KeyFileError, match='holds an ed25519 key, expected rsa'):
        store.get('acme', 'example.com', 's2026q4', 'rsa')


def test_public_file_rewritten_when_missing(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    ref.public_path.unlink()
    assert store.get('acme', 'example.com', 's2026q4', 'ed25519') == ref
    assert ref.public_path.read_text() == ref.public_txt + '\n'
    assert mode(ref.public_path) == 0o644


def test_public_file_mismatch_detected(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    ref.public_path.write_text(public_txt_value(generate_private_key('ed25519')) + '\n')
    with pytest.raises(KeyMismatchError, match='does not match the private key'):
        store.get('acme', 'example.com', 's2026q4', 'ed25519')


def test_ensure_is_idempotent(store: KeyStore) -> None:
    first = store.ensure('acme', 'example.com', 's2026q4')
    stamp = first.path.stat().st_mtime_ns
    second = store.ensure('acme', 'example.com', 's2026q4')
    assert second == first
    assert first.path.stat().st_mtime_ns == stamp
    assert store.ensure('acme', 'example.com', 's2026q4', bits=2048) == first


def test_ensure_refuses_different_size(store: KeyStore) -> None:
    store.ensure('acme', 'example.com', 's2026q4')
    with pytest.raises(KeyMismatchError, match='already exists with 2048 bits, but 3072 bits were requested'):
        store.ensure('acme', 'example.com', 's2026q4', bits=3072)


def test_list_keys_sorted_and_filtered(store: KeyStore) -> None:
    store.create('zeta', 'example.org', 's2026', 'ed25519')
    store.create('acme', 'example.com', 's2026q4e', 'ed25519')
    store.create('acme', 'example.com', 's2026q3', 'ed25519')
    store.create('acme', 'b.example', 's2026q4', 'ed25519')
    # noise that is not a key of the store
    (store.domain_dir('acme', 'example.com') / 'notes.key').write_text('x')
    (store.domain_dir('acme', 'example.com') / '.s1.rsa.key.abc.tmp').write_text('x')
    listed = [(r.client, r.domain, r.selector) for r in store.list_keys()]
    assert listed == [
        ('acme', 'b.example', 's2026q4'),
        ('acme', 'example.com', 's2026q3'),
        ('acme', 'example.com', 's2026q4e'),
        ('zeta', 'example.org', 's2026'),
    ]
    assert [r.selector for r in store.list_keys('acme', 'example.com')] == ['s2026q3', 's2026q4e']
    assert [r.client for r in store.list_keys('zeta')] == ['zeta']
    assert store.list_keys('nobody') == []
    with pytest.raises(InvalidNameError, match='needs the client'):
        store.list_keys(domain='example.com')


def test_list_keys_of_empty_store(tmp_path: Path) -> None:
    assert KeyStore(tmp_path / 'nothing').list_keys() == []


def test_delete(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    store.delete('acme', 'example.com', 's2026q4', 'ed25519')
    assert not ref.path.exists() and not ref.public_path.exists()
    store.delete('acme', 'example.com', 's2026q4', 'ed25519')  # idempotent


# No key material in reprs, strings, logs and errors ---------------------------------------------


def test_keyref_repr_and_str_have_no_key_material(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4')
    body = pem_body(ref.path)
    p_value = ref.public_txt.split('p=')[1]
    for text in (repr(ref), str(ref), repr(store), repr([ref])):
        for line in body:
            assert line not in text
        assert p_value[:40] not in text
    assert ref.fingerprint in repr(ref) and ref.fingerprint in str(ref)
    assert 's2026q4' in repr(ref)


def test_inventory_reference_is_a_reference(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4')
    reference = ref.inventory_reference()
    assert reference == {
        'client': 'acme',
        'domain': 'example.com',
        'selector': 's2026q4',
        'algorithm': 'rsa',
        'bits': 2048,
        'key_ref': 'acme/example.com/s2026q4.rsa.key',
        'key_path': str(ref.path),
        'fingerprint': ref.fingerprint,
    }
    assert store.root / str(reference['key_ref']) == ref.path
    flat = repr(reference)
    assert all(line not in flat for line in pem_body(ref.path))


def test_logs_and_errors_have_no_key_material(store: KeyStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger='mailinfra_iac.dkim'):
        ref = store.create('acme', 'example.com', 's2026q4')
        store.ensure('acme', 'example.com', 's2026q4')
        store.list_keys()
        ref.public_path.unlink()
        store.get('acme', 'example.com', 's2026q4', 'rsa')
        errors = []
        for attempt in (
            lambda: store.create('acme', 'example.com', 's2026q4'),
            lambda: store.ensure('acme', 'example.com', 's2026q4', bits=4096),
        ):
            with pytest.raises(Exception) as info:
                attempt()
            errors.append(str(info.value))
        os.chmod(ref.path, 0o640)
        with pytest.raises(InsecureKeyFileError) as info:
            store.get('acme', 'example.com', 's2026q4', 'rsa')
        errors.append(str(info.value))
    assert 'generated rsa key s2026q4._domainkey.example.com' in caplog.text
    body = pem_body(ref.path)
    for text in [caplog.text, *errors]:
        for line in body:
            assert line not in text


def test_key_file_is_unencrypted_pkcs8(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4')
    key = serialization.load_pem_private_key(ref.path.read_bytes(), password=None)
    assert fingerprint(key) == ref.fingerprint  # type: ignore[arg-type]


def test_keyref_is_frozen(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    with pytest.raises(AttributeError):
        ref.selector = 'other'  # type: ignore[misc]
    assert isinstance(ref, KeyRef)


# Bare repositories used through GIT_DIR / GIT_WORK_TREE (dotfiles in the home directory) ----------


@pytest.fixture
def dotfiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory tracked by a bare repository, the way `alias config='git --git-dir=...'` set-ups do."""
    home = tmp_path / 'home'
    home.mkdir()
    subprocess.run(['git', 'init', '-q', '--bare', str(tmp_path / 'dotfiles.git')], check=True)
    monkeypatch.chdir(home)
    return home


def test_bare_repository_with_git_work_tree_refused(dotfiles: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('GIT_DIR', str(dotfiles.parent / 'dotfiles.git'))
    monkeypatch.setenv('GIT_WORK_TREE', str(dotfiles))
    keys = dotfiles / '.local' / 'share' / 'mailinfra' / 'keys'
    assert find_git_work_tree(keys) is None  # no .git entry to find
    with pytest.raises(
        KeyStoreLocationError, match=r'inside the git work tree .*home of .*dotfiles\.git.*GIT_WORK_TREE'
    ):
        KeyStore(keys)
    with pytest.raises(KeyStoreLocationError):
        KeyStore(dotfiles)
    assert KeyStore(dotfiles.parent / 'elsewhere').root == (dotfiles.parent / 'elsewhere').resolve()
    assert KeyStore(keys, allow_inside_git=True).root == keys.resolve()


def test_bare_repository_with_core_worktree_refused(dotfiles: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git_dir = dotfiles.parent / 'dotfiles.git'
    subprocess.run(['git', '--git-dir', str(git_dir), 'config', 'core.worktree', str(dotfiles)], check=True)
    subprocess.run(['git', '--git-dir', str(git_dir), 'config', 'core.bare', 'false'], check=True)
    monkeypatch.setenv('GIT_DIR', str(git_dir))
    monkeypatch.chdir(dotfiles.parent)  # git still reports the configured work tree
    with pytest.raises(KeyStoreLocationError, match='GIT_DIR/GIT_WORK_TREE'):
        KeyStore(dotfiles / 'keys')
    assert find_git_env_work_tree(dotfiles.parent / 'elsewhere') is None


def test_relative_git_work_tree_refused(dotfiles: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('GIT_DIR', '../dotfiles.git')
    monkeypatch.setenv('GIT_WORK_TREE', '.')
    with pytest.raises(KeyStoreLocationError):
        KeyStore(dotfiles / 'keys')


def test_git_dir_of_a_bare_repository_alone_is_no_work_tree(dotfiles: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('GIT_DIR', str(dotfiles.parent / 'dotfiles.git'))
    assert KeyStore(dotfiles / 'keys').root == (dotfiles / 'keys').resolve()


@pytest.mark.parametrize('git_work_tree', [True, False])
def test_git_environment_without_git_installed(
    dotfiles: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, git_work_tree: bool
) -> None:
    empty = tmp_path / 'bin'
    empty.mkdir()
    monkeypatch.setenv('PATH', str(empty))
    monkeypatch.setenv('GIT_DIR', str(dotfiles.parent / 'dotfiles.git'))
    if git_work_tree:
        monkeypatch.setenv('GIT_WORK_TREE', str(dotfiles))
    # without git, GIT_DIR alone makes the current directory the top of the work tree, as git does
    assert find_git_env_work_tree(dotfiles / 'keys') == dotfiles.resolve()
    with pytest.raises(KeyStoreLocationError):
        KeyStore(dotfiles / 'keys')
    assert find_git_env_work_tree(tmp_path / 'elsewhere') is None


# Public records without the private keys -------------------------------------------------------


def test_public_record_reads_only_the_public_file(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'rsa')
    assert store.public_record('acme', 'example.com', 's2026q4', 'rsa') == ref.public_txt
    assert store.public_record('acme', 'example.com', 's2026q5', 'rsa') is None
    ref.path.unlink()  # a CI job that renders DNS holds only the public half
    assert store.public_record('acme', 'example.com', 's2026q4', 'rsa') == ref.public_txt


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        ('v=DKIM1; k=ed25519; p=AAAA\n', 'does not publish a rsa key'),
        ('v=DKIM1; k=rsa; p=\n', 'does not publish a rsa key'),
        ('v=DKIM1; k=rsa; p=%%%\n', 'not valid base64'),
        ('v=DKIM1; k=rsa; p=AAAA\n', 'not a valid rsa public key'),
        ('garbage\n', 'malformed tag'),
        ('\xff\n', 'cannot read public record file'),
    ],
)
def test_public_record_refuses_bad_files(store: KeyStore, content: str, message: str) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'rsa')
    ref.public_path.write_bytes(content.encode('latin-1'))
    with pytest.raises(KeyFileError, match=message):
        store.public_record('acme', 'example.com', 's2026q4', 'rsa')


def test_public_record_missing_next_to_a_private_key(store: KeyStore) -> None:
    ref = store.create('acme', 'example.com', 's2026q4', 'ed25519')
    ref.public_path.unlink()
    with pytest.raises(KeyFileError, match='missing next to the private key; `mailinfra dkim generate'):
        store.public_record('acme', 'example.com', 's2026q4', 'ed25519')
