"""The bounce MX's RCPT check (``mailinfra-agent ingest return-path-policy``): its answers, and the command as
spawn(8) runs it, standard input and output only. On a real Postfix: tests/postfix/test_relay_probes.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailinfra_agent.feedback import verp
from mailinfra_agent.feedback.signing import b32_decode, b32_encode
from mailinfra_agent.ingest.return_paths import answer, parse_return_path, serve_stream

from .ingest_logs import contract_data
from .postfix_dsn import TEST_KEYS

DOMAIN = 'rp.example.com'
RETURN_PATHS = {DOMAIN: [('b', '-'), ('n', '+')]}
VALID = verp.encode(TEST_KEYS, stream='marketing', domain=DOMAIN, recipient='ann@example.org')
FORGED = verp.encode([b'another key, not the deployment one'], stream='marketing', domain=DOMAIN)


def _next_version(address: str) -> str:
    """The address with the payload version a later agent may write (the next one after ours)."""
    local, _, domain = address.partition('@')
    data = bytearray(b32_decode(local[2:], strict=False))
    data[0] = (verp.VERSION + 1) << 5 | (data[0] & 0x1F)
    return f'{local[:2]}{b32_encode(bytes(data))}@{domain}'


NEWER = _next_version(VALID)
BAD_SIGNATURE = '450 4.7.1 return path not verified (bad-signature)'


def request(recipient: str, state: str = 'RCPT') -> dict[str, str]:
    return {'request': 'smtpd_access_policy', 'protocol_state': state, 'recipient': recipient}


@pytest.mark.parametrize(
    ('recipient', 'reason'),
    [
        (FORGED, 'bad-signature'),
        (FORGED.upper(), 'bad-signature'),
        (NEWER, None),  # a payload version this agent does not know yet: ingest keeps the DSN
        (VALID.partition('@')[0][:30] + f'@{DOMAIN}', 'truncated'),
        (f'b-victim+other.test@{DOMAIN}', 'malformed'),
        (f'B-{VALID[2:]}'.replace(DOMAIN, f'{DOMAIN.upper()}.'), None),  # case and a trailing dot: still ours
        (verp.encode(TEST_KEYS, stream='s', domain=DOMAIN, prefix='n', separator='+'), None),
        (VALID, None),
        (f'fbl@{DOMAIN}', None),  # not VERP-shaped: the operator's address, not this check's business
        (f'bounces@{DOMAIN}', None),
        (f'n-forged@{DOMAIN}', None),  # n's separator here is +
        ('b-forged@other.example', None),  # not a return-path domain
        ('postmaster', None),
    ],
)
def test_answers(recipient: str, reason: str | None) -> None:
    if reason is None:
        expected = 'DUNNO'
    elif reason == 'bad-signature':  # forged, or a wrong key on the MX: retried until the key is fixed
        expected = BAD_SIGNATURE
    else:
        expected = f'550 5.1.1 not a return path of ours ({reason})'
    assert answer(request(recipient), RETURN_PATHS, TEST_KEYS) == expected


def test_only_rcpt_requests_with_keys_are_judged() -> None:
    assert answer(request(FORGED, 'DATA'), RETURN_PATHS, TEST_KEYS) == 'DUNNO'
    assert answer(request(FORGED), RETURN_PATHS, ()) == 'DUNNO'  # no usable key: the MX takes it, ingest counts it


def test_return_path_arguments() -> None:
    assert parse_return_path('RP.Example.com.=b-') == ('rp.example.com', 'b', '-')
    for bad in ('rp.example.com', 'rp.example.com=b', 'rp.example.com=toolongprefix-', '=b-', 'a b=b-'):
        with pytest.raises(ValueError, match='expected DOMAIN=PREFIXSEPARATOR'):
            parse_return_path(bad)


def test_one_connection_many_requests() -> None:
    requests = b''.join(
        b''.join(f'{name}={value}\n'.encode() for name, value in request(recipient).items()) + b'\n'
        for recipient in (FORGED, VALID)
    )
    output = io.BytesIO()
    serve_stream(io.BytesIO(requests), output, RETURN_PATHS, TEST_KEYS)
    assert output.getvalue() == f'action={BAD_SIGNATURE}\n\naction=DUNNO\n\n'.encode()


def _run(tmp_path: Path, key: bytes | None, data: bytes) -> subprocess.CompletedProcess[bytes]:
    contract = contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {})
    key_file = tmp_path / 'key'
    if key is not None:
        key_file.write_bytes(key + b'\n')
        key_file.chmod(0o600)
    contract['suppression'] |= {'signing_key_file': str(key_file), 'old_signing_key_files': []}
    (tmp_path / 'agent.json').write_text(json.dumps(contract), encoding='utf-8')
    command = [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(tmp_path / 'agent.json')]
    return subprocess.run(
        [*command, 'return-path-policy', f'{DOMAIN}=b-'], input=data, capture_output=True, check=False
    )


def test_the_command_speaks_only_the_protocol(tmp_path: Path) -> None:
    data = b''.join(f'{name}={value}\n'.encode() for name, value in request(FORGED).items()) + b'\n'
    done = _run(tmp_path, TEST_KEYS[0], data)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f'action={BAD_SIGNATURE}\n\n'.encode(),
        b'',
    )
    # The key missing: DUNNO and not a word on standard error, which spawn(8) connects to smtpd too.
    (tmp_path / 'key').unlink()
    done = _run(tmp_path, None, data)
    assert (done.returncode, done.stdout, done.stderr) == (0, b'action=DUNNO\n\n', b'')


HEAVY = (
    'mailinfra_agent.ingest.service',
    'mailinfra_agent.ingest.sources',
    'mailinfra_agent.feedback.postfix_log',
    'mailinfra_agent.store',
    'mailinfra_agent.suppression',
    'mailinfra_agent.dns',
    'mailinfra_agent.dnsbl',
    'mailinfra_agent.commands.suppression',
    'mailinfra_agent.commands.shaping',
    'sqlite3',
    'asyncio',
    'email',
)
"""What the policy must not import: spawn(8) starts it per smtpd connection (the CLI and the service imported all
this: 0.37 s of CPU and 38 MB here, 0.11 s and 21 MB without)."""


def test_the_command_imports_only_what_it_needs(tmp_path: Path) -> None:
    contract = contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {})
    (tmp_path / 'key').write_bytes(TEST_KEYS[0] + b'\n')
    (tmp_path / 'key').chmod(0o600)
    contract['suppression'] |= {'signing_key_file': str(tmp_path / 'key'), 'old_signing_key_files': []}
    (tmp_path / 'agent.json').write_text(json.dumps(contract), encoding='utf-8')
    code = (
        'import sys\n'
        'from mailinfra_agent.cli import main\n'
        'sys.argv[1:] = ["ingest", "--contract", sys.argv[1], "return-path-policy", "rp.example.com=b-"]\n'
        'code = main()\n'
        'print(*sorted(sys.modules), sep="\\n", file=sys.stderr)\n'
        'sys.exit(code)\n'
    )
    data = b''.join(f'{name}={value}\n'.encode() for name, value in request(FORGED).items()) + b'\n'
    done = subprocess.run(
        [sys.executable, '-c', code, str(tmp_path / 'agent.json')], input=data, capture_output=True, check=False
    )
    assert (done.returncode, done.stdout) == (0, f'action={BAD_SIGNATURE}\n\n'.encode())
    loaded = done.stderr.decode().split()
    assert [name for name in loaded if name.startswith(HEAVY)] == []
