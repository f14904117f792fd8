"""The feedback-loop address outside the return-path domains, on the bounce MX (Debian's real Postfix).

``inbound.fbl_address`` at a managed name that is no return-path domain gets an MX to the inbound hosts, so the
bounce MX must take ARF reports to that one address (to the Maildir, or with ``postfix__feedback_pipe`` to the
pipe) and nothing else at its domain or elsewhere. The instances are tests/postfix/test_relay_probes.py's.
"""

from __future__ import annotations

import smtplib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_iac import parse_spec

from ..conftest import AS_OF, ROOT
from .role_files import context_of
from .test_relay_probes import (
    EXAMPLE,
    OUTSIDE,
    Instance,
    needs_postfix,
    pipe_primary_files,
    started,
)

# In the zone dailybrief.example, no return-path domain; '=' as Postfix's inline: tables would split it.
FBL = 'fbl=x@complaints.dailybrief.example'
# TLS-RPT and DMARC report addresses at a return-path domain and at the FBL address's domain.
REPORTS = ['tls@rp.dailybrief.example', 'tls@complaints.dailybrief.example', 'dmarc@rp.dailybrief.example']
POSTMASTER = 'postmaster@complaints.dailybrief.example'
TLS_REPORT = (
    b'Subject: Report Domain: rp.dailybrief.example\r\nMIME-Version: 1.0\r\n'
    b'Content-Type: multipart/report; report-type="tlsrpt"; boundary="b"\r\n\r\n'
    b'--b\r\nContent-Type: text/plain\r\n\r\nTLS report\r\n'
    b'--b\r\nContent-Type: application/tlsrpt+json\r\n\r\n{"organization-name": "x"}\r\n--b--\r\n'
)
ARF = (ROOT / 'tests' / 'data' / 'feedback' / 'messages' / 'sisimai-arf-02.eml').read_bytes()


def fbl_spec() -> str:
    text = EXAMPLE.read_text(encoding='utf-8')
    changed = text.replace('inbound:\n  hosts: [mx1]\n', f'inbound:\n  hosts: [mx1]\n  fbl_address: {FBL}\n')
    changed = changed.replace('rua: [tls-reports@dailybrief.example]', f'rua: [{", ".join(REPORTS[:2])}]')
    changed = changed.replace('rua: [dmarc@dailybrief.example]', f'rua: [{REPORTS[2]}]', 1)
    assert changed.count('@rp.') == 2 and changed.count('@complaints.') == 2
    return changed


@pytest.fixture(scope='module')
def mx() -> Iterator[dict[str, Instance]]:
    needs_postfix()
    context = context_of(parse_spec(fbl_spec(), 'spec.yml', as_of=AS_OF))
    primaries = [('mx', 'mx1/etc/postfix/', []), ('mx-pipe', 'pipe/etc/postfix/', [])]
    with started(context, primaries, 'mailinfra-fbl-mx-') as (instances, _, _):
        yield instances


def send(instance: Instance, recipient: str, data: bytes) -> tuple[int, bytes]:
    """RCPT TO's answer from outside the MX's networks; the message goes on when it is 250."""
    with smtplib.SMTP(
        '127.0.0.1', instance.port, local_hostname='feedback.other.test', timeout=30, source_address=(OUTSIDE, 0)
    ) as client:
        client.ehlo()
        client.mail('')
        code, text = client.rcpt(recipient)
        if code == 250:
            assert client.data(data)[0] == 250
        return code, text


def delivered(instance: Instance, mailbox: str) -> bytes:
    """The mailbox once the queue is empty (or after 30 s)."""
    path = instance.root / 'mail' / mailbox
    deadline = time.monotonic() + 30
    while (instance.queue() or not path.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return path.read_bytes() if path.exists() else b''


@pytest.mark.parametrize(('listener', 'mailbox'), [('mx', 'inbound'), ('mx-pipe', 'pipe')])
def test_the_bounce_mx_takes_reports_to_the_fbl_address_only(
    mx: dict[str, Instance], listener: str, mailbox: str
) -> None:
    instance = mx[listener]
    report = ARF.replace(b'Subject:', b'X-Probe: fbl-report\r\nSubject:', 1)
    assert send(instance, FBL, report)[0] == 250
    assert send(instance, FBL.upper(), report)[0] == 250  # Postfix's tables ignore case
    assert b'X-Probe: fbl-report' in delivered(instance, mailbox), instance.log
    # Another local part at its domain, another domain, routing tricks with the address: no relay.
    for recipient in (
        'other@complaints.dailybrief.example',
        'fbl+x@complaints.dailybrief.example',
        'fbl@complaints.dailybrief.example',
        'fbl@elsewhere.example.net',
        'fbl@dailybrief.example',
        'fbl%elsewhere.example.net@complaints.dailybrief.example',
        'fbl@complaints.dailybrief.example@elsewhere.example.net',
        '"fbl@complaints.dailybrief.example"@elsewhere.example.net',
        '@complaints.dailybrief.example:fbl@elsewhere.example.net',
        'elsewhere.example.net!fbl@complaints.dailybrief.example',
    ):
        code, text = send(instance, recipient, b'Subject: probe\r\n\r\nno\r\n')
        assert code == 554 and text.endswith(b'>: Relay access denied'), (recipient, code, text)
    assert [line for line in instance.log.splitlines() if 'status=sent' in line and 'elsewhere' in line] == []


@pytest.mark.parametrize('listener', ['mx', 'mx-pipe'])
def test_report_addresses_reach_the_inbound_mailbox(mx: dict[str, Instance], listener: str) -> None:
    """TLS-RPT and DMARC reports are no feedback: the pipe would drop them (unknown-format), the Maildir keeps them.

    So does postmaster at the FBL address's domain (RFC 5321 4.5.1: every domain that takes mail takes postmaster).
    """
    instance = mx[listener]
    codes = {
        address: send(instance, address, TLS_REPORT.replace(b'Subject:', f'X-Probe: {address}\r\nSubject:'.encode()))[0]
        for address in [*REPORTS, POSTMASTER]
    }
    mailbox = delivered(instance, 'inbound')
    assert {address: (code, f'X-Probe: {address}'.encode() in mailbox) for address, code in codes.items()} == {
        address: (250, True) for address in [*REPORTS, POSTMASTER]
    }


@pytest.mark.parametrize('listener', ['mx', 'mx-pipe'])
def test_routed_forms_of_the_fbl_address_are_refused_at_rcpt(mx: dict[str, Instance], listener: str) -> None:
    """The FBL address routed through the MX's own names (percent hack, bang path): refused, not taken and bounced."""
    instance = mx[listener]
    local, _, domain = FBL.partition('@')
    for recipient in (
        f'{local}%{domain}@{instance.hostname}',
        f'{local}%{domain}@[127.0.0.1]',
        f'{domain}!{local}@{instance.hostname}',
        f'{domain}!{local}@[127.0.0.1]',
    ):
        code, text = send(instance, recipient, b'X-Probe: routed\r\nSubject: probe\r\n\r\nno\r\n')
        assert code >= 500, (recipient, code, text)
    deadline = time.monotonic() + 30
    while instance.queue() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [line for line in instance.log.splitlines() if 'status=bounced' in line] == [], instance.log


def test_the_published_tls_rpt_default_is_a_report_address(tmp_path: Path) -> None:
    """Without ``tls_rpt.rua`` the TLS-RPT record names the client's postmaster: its reports go to the Maildir too."""
    text = fbl_spec().replace(f'  tls_rpt: {{rua: [{", ".join(REPORTS[:2])}]}}\n', '')
    text = text.replace(
        'postmaster: postmaster@dailybrief.example', 'postmaster: reports@complaints.dailybrief.example'
    )
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    assert 'tls_rpt' not in text  # facts/records.py publishes rua=mailto:<client.postmaster>
    files = pipe_primary_files(context_of(spec), tmp_path / 'pipe')
    assert 'reports@complaints.dailybrief.example OK' in files['pipe/etc/postfix/inbound_accepted']
    assert 'reports@complaints.dailybrief.example mailinfra-inbound' in files['pipe/etc/postfix/inbound_aliases']


def test_a_postmaster_report_address_is_listed_once(tmp_path: Path) -> None:
    """postmaster@<return-path domain> as the TLS-RPT address: one entry (Postfix warns on a duplicate key)."""
    needs_postfix()
    text = fbl_spec().replace(f'  tls_rpt: {{rua: [{", ".join(REPORTS[:2])}]}}\n', '')
    text = text.replace('postmaster: postmaster@dailybrief.example', 'postmaster: postmaster@rp.dailybrief.example')
    files = pipe_primary_files(context_of(parse_spec(text, 'spec.yml', as_of=AS_OF)), tmp_path / 'pipe')
    (tmp_path / 'main.cf').write_text('')
    (tmp_path / 'inbound_aliases').write_text(files['pipe/etc/postfix/inbound_aliases'])
    query = [
        'postmap',
        '-c',
        str(tmp_path),
        '-q',
        'postmaster@rp.dailybrief.example',
        f'texthash:{tmp_path}/inbound_aliases',
    ]
    looked_up = subprocess.run(query, capture_output=True, text=True, check=True)
    assert (looked_up.stdout, looked_up.stderr) == ('mailinfra-inbound\n', '')
