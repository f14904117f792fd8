"""Issue 13's wiring in roles/postfix, on Debian's real Postfix: what the role templates render, run.

- Hash-only suppression lists (``feedback.retention.suppressions: hash``): each stream's injection listener asks
  the agent's policy service (``check_policy_service`` with the stream as policy context) instead of the access
  map. A suppressed recipient gets a 5xx at RCPT TO, another is accepted, the store unusable gives a 4xx.
- ``postfix__feedback_pipe``: the primary (inbound) instance delivers DSNs and feedback-loop reports for the
  return-path domains through the pipe transport ``mailinfra-feedback`` into ``mailinfra-agent ingest message``.
  Each ends in the store once; while the store is away the message stays queued (deferred), and goes in once
  it is back.

The throw-away instances have their own directories, loopback ports and logs (tests/agent/test_suppression_postfix).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import idna
import pytest

from mailinfra_agent.feedback import tokens
from mailinfra_agent.postfix.trial import free_port
from mailinfra_agent.store import connect_sqlite, migrate
from mailinfra_agent.store.events import events, problem_counts
from mailinfra_agent.suppression import SuppressionList
from mailinfra_agent.suppression.policy_service import serve
from mailinfra_iac import parse_spec
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.mta_configs import role_template_variables, template_environment
from mailinfra_iac.render.rolevars import opendkim
from mailinfra_iac.render.rolevars.postfix import POLICY_SERVICE
from tests.agent import test_suppression_postfix as harness
from tests.agent.ingest_logs import contract_data
from tests.agent.postfix_dsn import TEST_KEYS
from tests.agent.test_suppression_postfix import needs_postfix, rcpt, running

from ..conftest import AS_OF, ROOT
from .role_files import context_of, host_variables, render_role_files

KEY = b'postfix-test-key'
EXAMPLE = ROOT / 'examples' / 'newsletter-publisher.yml'
SAMPLES = ROOT / 'tests' / 'data' / 'feedback' / 'messages'
SYSTEM_PYTHON = '/usr/bin/python3'
PIPE_USER = 'nobody'  # pipe(8) runs as neither root nor postfix; the role's is the agent's user
public_dir = harness.public_dir  # a directory the postfix user and the pipe's user can reach


def hash_only_context() -> RenderContext:
    text = EXAMPLE.read_text(encoding='utf-8')
    retention = 'retention: {events: 90d, after: hash'
    changed = text.replace(f'{retention}}}', f'{retention}, suppressions: hash}}')
    assert changed != text
    return context_of(parse_spec(changed, 'spec.yml', as_of=AS_OF))


def hash_only_spec_files() -> dict[str, str]:
    return render_role_files(hash_only_context())


def listener_entry(master_cf: str) -> list[str]:
    """The injection listener's lines (the inet service and its ``-o`` options)."""
    lines = master_cf.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r'\d+\s+inet\s', line))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith('  '))
    return lines[start:end]


# --- Rendering -------------------------------------------------------------------------------------------


def test_hash_only_lists_use_the_policy_service_on_every_listener() -> None:
    files = hash_only_spec_files()
    masters = {path: text for path, text in files.items() if re.search(r'/etc/postfix-[^/]+/master\.cf$', path)}
    assert masters
    for path, text in masters.items():
        stream = path.split('/etc/postfix-')[1].split('/')[0]
        entry = listener_entry(text)
        assert f'  -o smtpd_policy_service_policy_context={stream}' in entry, path
        assert f'  -o {{ smtpd_recipient_restrictions = check_policy_service {POLICY_SERVICE} }}' in entry, path
        assert not [line for line in entry if 'check_recipient_access' in line], path


def test_only_hash_only_lists_set_the_policy_service() -> None:
    assert host_variables(hash_only_context(), 'mx1')['postfix__suppression_policy_service'] == POLICY_SERVICE
    spec = parse_spec(EXAMPLE.read_text(encoding='utf-8'), 'spec.yml', as_of=AS_OF)
    assert 'postfix__suppression_policy_service' not in host_variables(context_of(spec), 'mx1')


def test_address_lists_keep_the_access_map() -> None:
    spec = parse_spec(EXAMPLE.read_text(encoding='utf-8'), 'spec.yml', as_of=AS_OF)
    files = render_role_files(context_of(spec))
    entry = listener_entry(files['mx1/etc/postfix-cold_outreach/master.cf'])
    restriction = 'check_recipient_access hash:/var/lib/mailinfra/suppression/postfix-cold_outreach'
    assert f'  -o {{ smtpd_recipient_restrictions = {restriction} }}' in entry
    assert not [line for line in entry if 'policy' in line]


def render_primary(pipe: bool, command: list[str] | None = None) -> dict[str, str]:
    """The inbound primary instance's files of newsletter-publisher/mx1 with ``postfix__feedback_pipe``."""
    context = context_of(parse_spec(EXAMPLE.read_text(encoding='utf-8'), 'spec.yml', as_of=AS_OF))
    inventory = host_variables(context, 'mx1')
    host: dict[str, Any] = {
        **inventory,
        'inventory_hostname': 'mx1',
        'ansible_managed': 'test',
        'postfix__feedback_pipe': pipe,
    }
    if command is not None:
        host['postfix__feedback_pipe_command'] = command
        host['postfix__feedback_pipe_user'] = PIPE_USER
    assert inventory['postfix__primary']['inbound']
    environment = template_environment()
    variables = role_template_variables(environment, 'postfix', host, opendkim.template_variables('postfix', host, {}))
    return {
        name: environment.get_template(f'postfix/templates/etc/postfix/{name}.j2').render(variables)
        for name in ('main.cf', 'master.cf', 'inbound_aliases')
    }


def test_the_pipe_is_off_by_default_and_the_maildir_gets_everything() -> None:
    files = render_primary(False)
    assert 'mailinfra-feedback' not in files['main.cf'] + files['master.cf']
    assert 'virtual_alias_domains = ' in files['main.cf']
    assert re.search(r'^@\S+ mailinfra-inbound$', files['inbound_aliases'], re.M)


def test_the_pipe_routes_the_return_path_domains_to_the_agent() -> None:
    files = render_primary(True)
    main = files['main.cf']
    domains = re.search(r'^relay_domains = (.+)$', main, re.M)
    assert domains is not None
    names = domains.group(1).split(', ')
    assert 'virtual_alias_domains' not in main
    transports = ', '.join(f'{name}=mailinfra-feedback:' for name in names)
    assert f'transport_maps = inline:{{ {transports} }}' in main
    assert 'mailinfra-feedback_destination_recipient_limit = 1' in main
    service = files['master.cf'].split('mailinfra-feedback unix', 1)[1].splitlines()
    assert service[0].split() == ['-', 'n', 'n', '-', '4', 'pipe']
    assert service[1].strip() == '-o soft_bounce=yes'  # any failure of the command defers, never a bounce
    assert service[2].split() == ['flags=DORq', 'user=mailinfra', 'size=26214400']
    assert service[3].strip() == (
        'argv=/opt/mailinfra-agent/bin/mailinfra-agent ingest message --envelope-recipient ${recipient}'
    )
    aliases = [line for line in files['inbound_aliases'].splitlines() if line and not line.startswith('#')]
    assert aliases == [f'{who}@{name} mailinfra-inbound' for name in names for who in ('postmaster', 'abuse')]


# --- The policy service on a real listener ---------------------------------------------------------------


def test_the_rendered_policy_listener_refuses_suppressed_recipients(public_dir: Path) -> None:
    needs_postfix()
    entry = listener_entry(hash_only_spec_files()['mx1/etc/postfix-cold_outreach/master.cf'])
    store_dir = public_dir / 'store'
    store_dir.mkdir()
    store = store_dir / 'agent.db'
    with connect_sqlite(store) as database:
        migrate(database)
        hashed = SuppressionList(database, KEY, keep_address=False)
        hashed.add('cold_outreach', 'gone@example.net', 'hard-bounce', 'event-1')
        hashed.add('transactional', 'other@example.net', 'unsubscribe', 'event-2')
    socket_path = public_dir / 'policy.sock'
    port = free_port()
    # The role's listener, on a loopback port, asking this test's service.
    injection = (
        '\n'.join(
            [f'127.0.0.1:{port} inet n - n - - smtpd']
            + [line.replace(POLICY_SERVICE, f'unix:{socket_path}') for line in entry[1:]]
        )
        + '\n'
    )

    server = serve(f'unix:{socket_path}', lambda: connect_sqlite(store), KEY)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with running(public_dir / 'instance', injection) as config:
            assert rcpt(port, 'Gone@example.net') == (
                550,
                '5.7.1 <Gone@example.net>: Recipient address rejected: suppressed by mailinfra (hard-bounce)',
            )
            assert rcpt(port, 'other@example.net')[0] == 250  # suppressed in another stream only
            assert rcpt(port, 'fine@example.net')[0] == 250

            # The store gone: the service answers DEFER_IF_PERMIT, the listener a 4xx, never a 250. (smtpd keeps its
            # policy connection, whose store connection holds the file open: a reload makes new connections.)
            store_dir.rename(public_dir / 'store-away')
            subprocess.run(['postfix', '-c', str(config), 'reload'], capture_output=True, check=True)
            time.sleep(1)
            code, text = rcpt(port, 'gone@example.net')
            assert (code, text) == (
                450,
                '4.3.0 <gone@example.net>: Recipient address rejected: suppression list unavailable, try again later',
            )
            assert rcpt(port, 'fine@example.net')[0] == 450

            (public_dir / 'store-away').rename(store_dir)
            assert rcpt(port, 'gone@example.net')[0] == 550
            assert rcpt(port, 'fine@example.net')[0] == 250
            log = (config.parent / 'maillog').read_text()
            assert not [line for line in log.splitlines() if 'fatal:' in line or 'panic:' in line]
    finally:
        server.shutdown()
        server.server_close()


# --- The pipe transport on a real inbound instance -------------------------------------------------------


def _pipe_instance_files(contract: Path, site: Path) -> tuple[str, list[str], str]:
    """The role's inbound main.cf settings, the return-path domains, and the pipe service."""
    # The system's Python (the test's own may sit where the pipe's user cannot read): for a SQLite store the agent
    # needs the standard library and its one base dependency, idna, which ``site`` holds (a host's venv has it from
    # the wheelhouse). Without it, a UTF-8 domain in a DSN would fail where a host does not.
    command = [
        '/usr/bin/env',
        f'PYTHONPATH={ROOT / "agent"}:{site}',
        SYSTEM_PYTHON,
        '-m',
        'mailinfra_agent',
        'ingest',
        '--contract',
        str(contract),
        'message',
        '--store-wait',
        '1',
    ]
    files = render_primary(True, command)
    main = files['main.cf']
    settings = [
        line
        for line in main.splitlines()
        if line.startswith(('relay_domains', 'transport_maps', 'mailinfra-feedback_', 'home_mailbox'))
    ]
    domains = re.search(r'^relay_domains = (.+)$', main, re.M)
    assert domains is not None
    service = files['master.cf'].split('# DSNs and feedback-loop reports', 1)[1]
    service = service[service.index('mailinfra-feedback unix') :]
    return '\n'.join(settings) + '\n', domains.group(1).split(', '), service


def _queue(config: Path) -> list[dict[str, Any]]:
    listing = subprocess.run(['postqueue', '-c', str(config), '-j'], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in listing.stdout.splitlines() if line.strip()]


def _wait(condition: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def _sample(name: str) -> str:
    """A stored sample without the headers its earlier delivery added (the pipe adds its own)."""
    text = UTF8_DSN if name == 'utf8' else (SAMPLES / name).read_text(encoding='utf-8')
    lines = text.splitlines()
    while lines[0].split(':')[0] in ('Return-Path', 'X-Original-To', 'Delivered-To'):
        lines.pop(0)
    return '\r\n'.join(lines) + '\r\n'


# postfix-failed.eml for a recipient at faß.de, in RFC 6533's escaped ``utf-8`` form (the pipe reads it with idna).
UTF8_DSN = (
    (SAMPLES / 'postfix-failed.eml')
    .read_text(encoding='utf-8')
    .replace('Final-Recipient: rfc822; unknown1@r.test', 'Final-Recipient: utf-8; gone@FA\\x{DF}.de')
    .replace('Original-Recipient: rfc822;unknown1@r.test\n', '')
    .replace('<20261206062536.1107A252B6A@mta1.example.test>', '<utf8.1@mta1.example.test>')
)


def test_dsns_and_complaints_go_through_the_pipe_into_the_store_once(public_dir: Path) -> None:
    needs_postfix()
    if shutil.which('postqueue') is None or not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f'needs postqueue and {SYSTEM_PYTHON}')
    user = pwd.getpwnam(PIPE_USER)
    owner = (user.pw_uid, user.pw_gid)
    store_dir = public_dir / 'store'
    store_dir.mkdir()
    os.chown(store_dir, *owner)
    key_file = public_dir / 'signing-key'
    key_file.write_bytes(TEST_KEYS[0] + b'\n')
    key_file.chmod(0o600)
    os.chown(key_file, *owner)
    data = contract_data({'backend': 'sqlite', 'path': str(store_dir / 'agent.db')}, {})
    data['suppression']['signing_key_file'] = str(key_file)
    data['suppression']['old_signing_key_files'] = []
    contract = public_dir / 'agent.json'
    contract.write_text(json.dumps(data), encoding='utf-8')
    contract.chmod(0o644)

    site = public_dir / 'site'
    shutil.copytree(Path(idna.__file__).parent, site / 'idna', ignore=shutil.ignore_patterns('__pycache__'))
    settings, domains, service = _pipe_instance_files(contract, site)
    bounce_domain = domains[0]
    port = free_port()
    root = public_dir / 'inbound'
    # running() writes the test's MAIN_CF; the role's inbound settings and pipe service are added to it.
    with running(root, f'127.0.0.1:{port} inet n - n - - smtpd\n' + service) as config:
        assignments = [line.replace(' = ', '=', 1) for line in settings.splitlines()]
        subprocess.run(['postconf', '-c', str(config), '-e', *assignments], capture_output=True, check=True)
        subprocess.run(['postfix', '-c', str(config), 'reload'], capture_output=True, check=True)
        time.sleep(1)

        def send(sender: str, recipient: str, sample: str) -> None:
            with smtplib.SMTP('127.0.0.1', port, local_hostname='mx.provider.example', timeout=20) as client:
                client.sendmail(sender, [recipient], _sample(sample).encode())

        send('', f'bounces@{bounce_domain}', 'postfix-failed.eml')
        send('staff@hotmail.example', f'fbl@{bounce_domain}', 'synthetic-jmrp-anonymised.eml')
        send('', f'bounces@{bounce_domain}', 'utf8')
        assert _wait(lambda: _queue(config) == [] and (store_dir / 'agent.db').exists()), (root / 'maillog').read_text()

        def stored() -> list[tuple[str, str, str]]:
            with connect_sqlite(store_dir / 'agent.db') as db:
                return sorted((event.kind, event.status, event.recipient) for event in events(db))

        first = stored()
        assert first == [
            ('complaint', 'complaint', 'zoe@outlook.test'),
            ('dsn', 'bounced', 'gone@xn--fa-hia.de'),  # UTS 46 (IDNA 2003 gave fass.de, another domain)
            ('dsn', 'bounced', 'unknown1@r.test'),
        ]

        # What the RCPT check lets through (not VERP-shaped) from a forged sender: a forged mailto: unsubscribe,
        # a message to a local part nobody uses, a forged DSN. The pipe exits 0 and counts each; nothing bounces
        # to the forged sender (backscatter) and nothing is stored.
        token = tokens.make_token('victim@other.test', 'marketing', [b'not the deployment key, 0001' * 2], time.time())
        forged = f'Subject: unsubscribe {token}\r\nFrom: <victim@other.test>\r\n\r\nplease\r\n'
        with smtplib.SMTP('127.0.0.1', port, local_hostname='mx.provider.example', timeout=20) as client:
            client.sendmail('victim@other.test', [f'unsubscribe@{bounce_domain}'], forged.encode())
            client.sendmail('victim@other.test', [f'nobody-here@{bounce_domain}'], b'Subject: hi\r\n\r\nhi\r\n')
        send('victim@other.test', f'bounces@{bounce_domain}', 'postfix-failed.eml')
        assert _wait(lambda: _queue(config) == []), _queue(config)
        assert stored() == first
        with connect_sqlite(store_dir / 'agent.db') as db:
            counted = {reason: count for (_, _, reason), count in problem_counts(db).items()}
        assert counted == {'bad-token': 1, 'unknown-format': 1}, counted
        log = (root / 'maillog').read_text(encoding='utf-8')
        assert 'status=bounced' not in log and 'sender non-delivery notification' not in log
        assert len(re.findall(r'relay=mailinfra-feedback.*status=sent', log)) == 6

        # The store away: the agent exits 75, the message stays in the queue, deferred, not bounced.
        store_dir.rename(public_dir / 'store-away')
        send('', f'bounces@{bounce_domain}', 'postfix-failed-two.eml')

        def deferred() -> bool:
            queue = _queue(config)
            return len(queue) == 1 and queue[0]['queue_name'] == 'deferred'

        assert _wait(deferred), _queue(config)
        (reason,) = [recipient['delay_reason'] for recipient in _queue(config)[0]['recipients']]
        assert 'temporary failure' in reason.lower() or 'will retry' in reason.lower(), reason
        log = (root / 'maillog').read_text(encoding='utf-8')
        assert 'status=bounced' not in log

        (public_dir / 'store-away').rename(store_dir)
        subprocess.run(['postqueue', '-c', str(config), '-f'], capture_output=True, check=True)
        assert _wait(lambda: _queue(config) == []), _queue(config)
        after = stored()
        assert set(first) < set(after) and len(after) == len(set(after))  # the held DSN's events, once
        log = (root / 'maillog').read_text(encoding='utf-8')
        assert 'status=bounced' not in log
        assert len(re.findall(r'relay=mailinfra-feedback.*status=sent', log)) == 7

        # A forged complaint (Original-Rcpt-To names anyone, a Message-ID never sent): no event, no suppression, no
        # bounce to the forger; young, it waits in the queue for a delivery that may still be logged (exit 75).
        forged = _sample('synthetic-jmrp-anonymised.eml').replace(
            'Original-Rcpt-To: <redacted>', 'Original-Rcpt-To: ceo@customer.example'
        )
        forged = re.sub(r'Return-Path: <b-[^>]+>', 'Return-Path: <news@news.example.com>', forged)
        forged = re.sub(r'Original-Mail-From: <b-[^>]+>', 'Original-Mail-From: <news@news.example.com>', forged)
        with smtplib.SMTP('127.0.0.1', port, local_hostname='mx.provider.example', timeout=20) as client:
            client.sendmail('forger@example.net', [f'fbl@{bounce_domain}'], forged.encode())
        assert _wait(deferred), _queue(config)
        assert stored() == after
        log = (root / 'maillog').read_text(encoding='utf-8')
        assert 'status=bounced' not in log and 'ceo@customer.example' not in log
        subprocess.run(['postsuper', '-c', str(config), '-d', 'ALL'], capture_output=True, check=True)

        # Any other failure (here the command cannot be executed, exit 126) defers too: soft_bounce, no bounce.
        master_cf = config / 'master.cf'
        master_cf.write_text(master_cf.read_text(encoding='utf-8').replace(SYSTEM_PYTHON, '/nonexistent/python3'))
        subprocess.run(['postfix', '-c', str(config), 'reload'], capture_output=True, check=True)
        time.sleep(1)
        send('', f'bounces@{bounce_domain}', 'postfix-failed.eml')
        assert _wait(deferred), _queue(config)
        assert 'status=bounced' not in (root / 'maillog').read_text(encoding='utf-8')
