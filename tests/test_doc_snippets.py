"""Every Python example in the README and docs/ runs as written, with only what it names outside the library made real.

README.md runs from the repository root (test_docs.py); docs/install.md against a client spec and key store in a
scratch directory; docs/feedback.md with its key file in a scratch directory and its SMTP listener an smtp-sink on
loopback (the example's 192.0.2.10:2525 is a documentation address): the message is read back from the sink.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_agent.feedback import verp
from mailinfra_agent.feedback.tokens import read_id, verify_token
from mailinfra_iac.cli.main import main

from .conftest import ROOT

FENCE = re.compile(r'^```python\n(.*?)^```', re.MULTILINE | re.DOTALL)
RUN_HERE = {'docs/install.md': 1, 'docs/feedback.md': 1}
"""The documents whose Python examples this module runs, and how many each has (README.md: test_docs.py)."""


def snippets(document: str) -> list[str]:
    return FENCE.findall((ROOT / document).read_text(encoding='utf-8'))


def run(code: str, document: str) -> None:
    exec(compile(code, document, 'exec'), {'__name__': '__doc_example__'})


def test_every_python_example_is_run() -> None:
    found = {
        str(path.relative_to(ROOT)): len(snippets(str(path.relative_to(ROOT))))
        for path in [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
    }
    assert {document: count for document, count in found.items() if count} == {'README.md': 1, **RUN_HERE}


def test_install_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [code] = snippets('docs/install.md')
    (tmp_path / 'clients').mkdir()
    spec = tmp_path / 'clients' / 'acme.yml'
    shutil.copy(ROOT / 'examples' / 'saas-transactional.yml', spec)  # client "acme"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(tmp_path / 'keys'))
    assert main(['dkim', 'generate', str(spec)]) == 0
    run(code, 'docs/install.md')
    assert (tmp_path / 'out' / 'acme' / 'inventory' / 'hosts.yml').is_file()
    assert (tmp_path / 'out' / 'acme' / 'dns' / 'records.json').is_file()  # with the keys of the key store


@pytest.fixture
def smtp_sink() -> Iterator[tuple[int, Path]]:
    """Postfix's smtp-sink on loopback, dumping each message with its envelope into a file."""
    if not shutil.which('smtp-sink'):
        pytest.fail('smtp-sink (Postfix) is not installed: run script/bootstrap')
    # run as nobody when we are root: not under pytest's directory, which only we may enter
    directory = Path(tempfile.mkdtemp(prefix='mailinfra-test-sink-'))
    directory.chmod(0o1777)
    dump = directory / 'messages'
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = int(probe.getsockname()[1])
    user = ['-u', 'nobody'] if os.geteuid() == 0 else []
    server = subprocess.Popen(
        ['smtp-sink', *user, '-D', str(dump), f'127.0.0.1:{port}', '8'],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail('smtp-sink did not listen')
                time.sleep(0.05)
        yield port, dump
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def test_feedback_example(tmp_path: Path, smtp_sink: tuple[int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    port, dump = smtp_sink
    # smtplib names the client by socket.getfqdn(), a reverse DNS lookup, unless it is given a name
    monkeypatch.setattr(socket, 'getfqdn', lambda name='': pytest.fail(f'a DNS lookup of {name!r}'))
    [code] = snippets('docs/feedback.md')
    key_file = tmp_path / 'feedback-signing-key'
    key_file.write_text('k' * 48 + '\n', encoding='utf-8')
    key_file.chmod(0o600)
    documented = ("'/etc/mailinfra/secrets/feedback-signing-key'", "smtplib.SMTP('192.0.2.10', 2525)")
    assert all(text in code for text in documented)
    code = code.replace(documented[0], repr(str(key_file))).replace(
        documented[1], f"smtplib.SMTP('127.0.0.1', {port}, local_hostname='localhost')"
    )
    run(code, 'docs/feedback.md')

    deadline = time.monotonic() + 10
    while not (dump.exists() and dump.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.05)
    text = dump.read_text(encoding='utf-8')
    envelope = re.search(r'^X-Mail-Args: <([^>]*)>', text, re.MULTILINE)  # smtp-sink's record of MAIL FROM
    assert envelope is not None, text
    return_path = envelope.group(1)
    local, domain = return_path.rsplit('@', 1)
    # what the document says this gives
    assert domain == 'bounces.example.com' and local.startswith('b-')
    assert len(local.encode()) == 58
    decoded = verp.decode(return_path, [b'k' * 48])
    assert (decoded.stream, decoded.segment, decoded.campaign) == ('marketing', 'weekly-de', '2026-12')

    message = email.message_from_string(text[text.index('From: ') :], policy=email.policy.default)
    assert message['List-Unsubscribe-Post'] == 'List-Unsubscribe=One-Click'
    https, mailto = (part.strip(' <>') for part in str(message['List-Unsubscribe']).split(','))
    assert https.startswith('https://unsub.example.com/u/') and '=?' not in str(message['List-Unsubscribe'])
    assert mailto.startswith('mailto:unsubscribe@bounces.example.com?subject=unsubscribe%20')
    token = verify_token(https.rsplit('/', 1)[1], [b'k' * 48], time.time(), max_age=86400)
    assert (token.recipient, token.stream, token.segment) == ('ann@example.org', 'marketing', 'weekly-de')
    identifier = read_id(' '.join(str(message['X-Mailinfra-Id']).split()), [b'k' * 48])
    assert (identifier.stream, identifier.campaign) == ('marketing', '2026-12')
