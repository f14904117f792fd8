"""The rendered opendkim.conf signs the right headers: Debian's OpenDKIM signs, dkimpy verifies.

Each OpenDKIM configuration the role writes for the newsletter example (the RSA process and the Ed25519
one) runs unchanged except for its file paths and user, with a test key, and signs a message through miltertest
(OpenDKIM's own milter client). The signature's h= list is checked, dkimpy verifies it, and the same
message with one more copy of an over-signed header must fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim
import pytest
import yaml

from mailinfra_iac import load_spec
from mailinfra_iac.dkim.keys import generate_private_key, private_key_pem, public_txt_value

from ..conftest import AS_OF, ROOT
from .role_files import context_of, render_role_files

pytestmark = pytest.mark.skipif(
    not (shutil.which('opendkim') and shutil.which('miltertest')),
    reason='needs Debian packages opendkim and miltertest (script/bootstrap)',
)

DOMAIN = 'news.example.com'
SELECTOR = 'test'
DEFAULTS = yaml.safe_load((ROOT / 'roles/opendkim/defaults/main.yml').read_text())

HEADERS: list[tuple[str, str]] = [
    ('From', f'News <news@{DOMAIN}>'),
    ('To', 'someone@example.net'),
    ('Cc', 'other@example.net'),
    ('Reply-To', f'reply@{DOMAIN}'),
    ('Subject', 'Our news'),
    ('Date', 'Sat, 05 Dec 2026 12:00:00 +0000'),
    ('Message-ID', f'<1@{DOMAIN}>'),
    ('In-Reply-To', f'<0@{DOMAIN}>'),
    ('MIME-Version', '1.0'),
    ('Content-Type', 'text/plain; charset=utf-8'),
    ('List-Unsubscribe', f'<https://{DOMAIN}/u/1>, <mailto:u@{DOMAIN}>'),
    ('List-Unsubscribe-Post', 'List-Unsubscribe=One-Click'),
    ('X-Mailer', 'test'),
]
"""A bulk message with every header the issue names, and one that is not to be signed."""

BODY = 'Hello.\r\n'

LUA = """
conn = mt.connect("{socket}", 50, 0.1)
if conn == nil then error("cannot connect to opendkim") end
if mt.conninfo(conn, "localhost", "127.0.0.1") ~= nil then error("conninfo failed") end
if mt.getreply(conn) ~= SMFIR_CONTINUE then error("connection refused by the filter") end
mt.macro(conn, SMFIC_MAIL, "i", "T1")
if mt.mailfrom(conn, "bounce@{domain}") ~= nil then error("mailfrom failed") end
if mt.rcptto(conn, "<someone@example.net>") ~= nil then error("rcptto failed") end
{headers}
if mt.eoh(conn) ~= nil then error("eoh failed") end
if mt.bodystring(conn, "{body}") ~= nil then error("body failed") end
if mt.eom(conn) ~= nil then error("eom failed") end
if not mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature") and not mt.eom_check(conn, MT_HDRADD, "DKIM-Signature") then
  error("no signature added")
end
mt.echo("SIGNATURE:" .. mt.getheader(conn, "DKIM-Signature", 0))
mt.disconnect(conn)
"""


def lua_string(value: str) -> str:
    return value.replace('\\', '\\\\').replace('"', '\\"').replace('\r', '\\r').replace('\n', '\\n')


@pytest.fixture(scope='module')
def configs() -> dict[str, str]:
    """The OpenDKIM configuration files of the newsletter example's dual-signing host, by algorithm."""
    spec = load_spec((ROOT / 'examples' / 'newsletter-publisher.yml').relative_to(ROOT), as_of=AS_OF)
    files = render_role_files(context_of(spec))
    return {'rsa': files['mx2/etc/opendkim.conf'], 'ed25519': files['mx2/etc/opendkim/opendkim-ed25519.conf']}


def local_config(text: str, directory: Path) -> str:
    """The rendered configuration with its paths moved into ``directory``; every other line unchanged."""
    replace = {
        'KeyTable': f'file:{directory}/KeyTable',
        'SigningTable': f'refile:{directory}/SigningTable',
        'InternalHosts': f'file:{directory}/TrustedHosts',
        'ExternalIgnoreList': f'file:{directory}/TrustedHosts',
        'Socket': f'local:{directory}/sock',
        'PidFile': f'{directory}/pid',
        'Syslog': 'no',
        # OpenDKIM refuses keys below a world-writable directory (the test's is under /tmp).
        'RequireSafeKeys': 'no',
    }
    lines = []
    for line in text.splitlines():
        name = line.split(maxsplit=1)[0] if line.strip() and not line.startswith('#') else ''
        if name == 'UserID':
            continue  # runs as the test's user
        lines.append(f'{name:<24}{replace[name]}' if name in replace else line)
    return '\n'.join(lines) + '\n'


@pytest.fixture(scope='module', params=['rsa', 'ed25519'])
def signer(
    request: pytest.FixtureRequest, configs: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A running OpenDKIM with the rendered configuration of one algorithm and a fresh test key."""
    algorithm = request.param
    directory = tmp_path_factory.mktemp(f'opendkim-{algorithm}')
    directory.chmod(0o700)
    key = generate_private_key(algorithm)
    key_file = directory / 'test.key'
    key_file.write_bytes(private_key_pem(key))
    key_file.chmod(0o600)
    (directory / 'KeyTable').write_text(f'{SELECTOR}._domainkey.{DOMAIN} {DOMAIN}:{SELECTOR}:{key_file}\n')
    (directory / 'SigningTable').write_text(f'*@{DOMAIN} {SELECTOR}._domainkey.{DOMAIN}\n')
    (directory / 'TrustedHosts').write_text('127.0.0.1\n::1\n')
    config = directory / 'opendkim.conf'
    config.write_text(local_config(configs[algorithm], directory))
    check = subprocess.run(['opendkim', '-n', '-x', str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    log = directory / 'stderr'
    with log.open('w') as stderr:
        process = subprocess.Popen(['opendkim', '-f', '-x', str(config)], stderr=stderr)
    try:
        deadline = time.monotonic() + 10
        while not (directory / 'sock').exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, 'opendkim did not create its socket'
            time.sleep(0.05)
        yield {'directory': directory, 'record': public_txt_value(key).encode(), 'algorithm': algorithm}
    finally:
        process.kill()  # nothing to lose; SIGTERM waits for libmilter's 5 s poll
        process.wait(timeout=10)


def sign(signer: dict[str, Any], headers: list[tuple[str, str]]) -> str:
    """The DKIM-Signature value OpenDKIM adds to a message with these headers and BODY."""
    directory: Path = signer['directory']
    script = directory / 'sign.lua'
    script.write_text(
        LUA.format(
            socket=f'unix:{directory}/sock',
            domain=DOMAIN,
            body=lua_string(BODY),
            headers='\n'.join(
                f'if mt.header(conn, "{name}", "{lua_string(value)}") ~= nil then error("header failed") end'
                for name, value in headers
            ),
        )
    )
    result = subprocess.run(['miltertest', '-s', str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r'SIGNATURE:(.*)', result.stdout, re.S)
    assert found, result.stdout
    return found.group(1).strip()


def message(signature: str, headers: list[tuple[str, str]]) -> bytes:
    folded = signature.replace('\r\n', '\n').replace('\n', '\r\n')
    lines = [f'DKIM-Signature: {folded}'] + [f'{name}: {value}' for name, value in headers]
    return ('\r\n'.join(lines) + '\r\n\r\n' + BODY).encode()


def verifies(signer: dict[str, Any], data: bytes) -> bool:
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return signer['record'] if name.rstrip(b'.') == f'{SELECTOR}._domainkey.{DOMAIN}'.encode() else None

    return bool(dkim.DKIM(data).verify(dnsfunc=dnsfunc))


def signed_headers(signature: str) -> list[str]:
    tags = dkim.util.parse_tag_value(re.sub(r'\s+', ' ', signature).encode())
    return [name.strip().lower() for name in tags[b'h'].decode().replace(' ', '').split(':')]


def test_the_rendered_configuration_signs_every_recommended_and_list_header(signer: dict[str, Any]) -> None:
    h = signed_headers(sign(signer, HEADERS))
    sign_set = {name.lower() for name in DEFAULTS['opendkim__sign_headers']}
    oversign = {name.lower() for name in DEFAULTS['opendkim__oversign_headers']}
    present = [name.lower() for name, _ in HEADERS]
    for name in present:
        if name in sign_set:
            # Every present header is signed; the over-signed ones once more than they occur.
            assert h.count(name) == present.count(name) + (name in oversign), (name, h)
    assert 'x-mailer' not in h
    for name in oversign - set(present):
        assert h.count(name) == 1, (name, h)  # absent but over-signed: nobody may add it
    for name in (
        'list-unsubscribe',
        'list-unsubscribe-post',
        'message-id',
        'content-type',
        'mime-version',
        'reply-to',
        'cc',
        'in-reply-to',
        'from',
        'subject',
        'date',
        'to',
    ):
        assert name in h, (name, h)


def test_the_signature_verifies_and_an_added_header_breaks_it(signer: dict[str, Any]) -> None:
    signature = sign(signer, HEADERS)
    assert verifies(signer, message(signature, HEADERS))
    # A header not signed may be added: the signature still verifies (the check below can tell).
    assert verifies(signer, message(signature, [*HEADERS, ('X-Added', 'later')]))
    for name, value in [
        ('List-Unsubscribe', '<https://evil.example/u>'),
        ('List-Unsubscribe-Post', 'List-Unsubscribe=One-Click'),
        ('From', 'Evil <evil@evil.example>'),
        ('Subject', 'Other subject'),
        ('Date', 'Sun, 06 Dec 2026 12:00:00 +0000'),
        ('List-Id', '<news.evil.example>'),
    ]:
        for position in (0, len(HEADERS)):  # prepended or appended: both must fail
            changed = [*HEADERS]
            changed.insert(position, (name, value))
            assert not verifies(signer, message(signature, changed)), (name, position)
