"""Postfix queue files and defer logs (``mailinfra_agent.queue.postfix_records``), without a running Postfix.

The files are written in Postfix's record format the way cleanup(8) and postdrop(1) write them; the real-Postfix
tests (test_queue_postfix.py) read files Postfix itself wrote.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailinfra_agent.queue import postfix_records
from mailinfra_agent.queue.postfix_records import (
    Envelope,
    MalformedQueueFile,
    domain_of,
    read_defer_statuses,
    read_envelope,
)


def record(kind: str, data: bytes) -> bytes:
    length = len(data)
    header = bytearray(kind.encode())
    while True:
        byte, length = length & 0x7F, length >> 7
        header.append(byte | 0x80 if length else byte)
        if not length:
            return bytes(header) + data


def cleanup_file(
    recipients: list[str], *, sender: str = 'news@brand.example', arrival: int = 1_796_500_000, body: int = 3
) -> bytes:
    head = b''.join(
        [
            record('T', f'{arrival} 123456'.encode()),
            record('A', b'rewrite_context=local'),
            record('S', sender.encode()),
            *(record('O', r.encode()) + record('R', r.encode()) for r in recipients),
        ]
    )
    content = b''.join(record('N', b'line %d' % n) for n in range(body))
    size_record_length = len(record('C', b'%15d %15d %15d %15d' % (0, 0, 0, 0)))
    data_offset = size_record_length + len(head) + 2
    size = b'%15d %15d %15d %15d' % (len(content), data_offset, len(recipients), 0)
    return record('C', size) + head + record('M', b'') + content + record('X', b'') + record('E', b'')


def write(tmp_path: Path, data: bytes, name: str = 'ABCDEF123') -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_cleanup_file_gives_arrival_sender_and_pending_recipient_domains(tmp_path: Path) -> None:
    path = write(tmp_path, cleanup_file(['a@Gmail.COM', 'b@yahoo.com', 'c@gmail.com'], body=2000))
    envelope, st = read_envelope(path)
    assert envelope == Envelope(1_796_500_000.0, 'news@brand.example', ('gmail.com', 'yahoo.com', 'gmail.com'))
    assert st.st_size > 10_000  # the content (2,000 lines) was skipped with the size record


def test_delivered_and_cancelled_recipients_do_not_count(tmp_path: Path) -> None:
    data = cleanup_file(['a@gmail.com', 'b@yahoo.com', 'c@web.de'])
    # Postfix marks a delivered recipient by rewriting its record type in place: R -> D; cancelled: R -> /.
    data = data.replace(b'R\x0ba@gmail.com', b'D\x0ba@gmail.com').replace(b'R\x08c@web.de', b'/\x08c@web.de')
    assert read_envelope(write(tmp_path, data))[0].recipient_domains == ('yahoo.com',)


def test_pointer_records_are_followed(tmp_path: Path) -> None:
    # cleanup appends a recipient through a pointer to a heap after the end record and a pointer back.
    base = cleanup_file(['a@gmail.com'])
    marker = record('R', b'a@gmail.com')
    at = base.index(marker) + len(marker)
    placeholder = record('p', b'%15d' % 0)
    with_placeholder = base[:at] + placeholder + base[at:]
    # Fix the size record: the data offset moved by the placeholder's length.
    fields = with_placeholder[2:62].split()
    size = b'%15d %15d %15d %15d' % (int(fields[0]), int(fields[1]) + len(placeholder), 1, 0)
    data = bytearray(record('C', size) + with_placeholder[len(record('C', size)) :])
    heap = len(data)
    back = at + len(placeholder)
    data += record('R', b'b@outlook.com') + record('p', b'%15d' % back)
    data[at : at + len(placeholder)] = record('p', b'%15d' % heap)
    assert read_envelope(write(tmp_path, bytes(data)))[0].recipient_domains == ('gmail.com', 'outlook.com')


def test_a_maildrop_file_takes_its_time_from_the_mtime(tmp_path: Path) -> None:
    data = b''.join(
        [
            record('F', b'Some One'),
            record('S', b'someone@example.net'),
            record('R', b'x@example.org'),
            record('M', b''),
            record('N', b'Subject: hi'),
            record('N', b''),
            record('X', b''),
            record('R', b'from-header@gmail.com'),  # recipient extracted from the headers (sendmail -t)
            record('E', b''),
        ]
    )
    path = write(tmp_path, data)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    envelope, _ = read_envelope(path)
    assert envelope == Envelope(1_700_000_000.0, 'someone@example.net', ('example.org', 'gmail.com'))


def test_a_postfix_3_maildrop_file_starts_with_its_time(tmp_path: Path) -> None:
    # The layout postdrop of Postfix 3.7 writes (no size record; qshape skips these files).
    data = b''.join(
        [
            record('T', b'1796526209 257682'),
            record('A', b'rewrite_context=local'),
            record('F', b'root'),
            record('S', b'local@brand.example'),
            record('R', b'six@example.net'),
            record('M', b''),
            record('N', b'Subject: local'),
            record('X', b''),
            record('E', b''),
        ]
    )
    assert read_envelope(write(tmp_path, data))[0] == Envelope(1796526209.0, 'local@brand.example', ('example.net',))


def test_every_truncation_of_a_queue_file_is_malformed_never_a_crash(tmp_path: Path) -> None:
    data = cleanup_file(['a@gmail.com', 'b@yahoo.com'])
    for cut in range(len(data)):
        with pytest.raises(MalformedQueueFile):
            read_envelope(write(tmp_path, data[:cut]))


@pytest.mark.parametrize(
    'data',
    [
        b'hello world, not a queue file\n',
        record('C', b'garbage') + record('T', b'1 2'),
        record('C', b'%15d %15d %15d' % (5, 10, 1)) + record('A', b'x=y') + record('E', b''),  # no T after C
        record('C', b'%15d %15d %15d' % (10**9, 40, 1)) + record('T', b'1 0') + record('S', b'') + record('M', b''),
        b'C\xff\xff\xff\xff\x7f',  # a length beyond any record
        record('S', b'a@b.example') + record('p', b'%15d' % 10**9) + record('E', b''),  # pointer outside the file
        record('S', b'a@b.example') + record('p', b'%15d' % 0)[:-3],
        record('T', b'9' * 400 + b' 0') + record('S', b'') + record('E', b''),  # OverflowError: the float of a time
        cleanup_file(['a@b.example']).replace(b'T\x11', b'T\x92\x03' + b'9' * 400, 1),  # the same after C
        record('C', b'%15d %15d %15d' % (-100, -50, 1)) + record('T', b'1 0') + record('S', b'') + record('M', b''),
    ],
)
def test_garbage_is_malformed(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(MalformedQueueFile):
        read_envelope(write(tmp_path, data))


def test_a_pointer_loop_ends(tmp_path: Path) -> None:
    """As Postfix's rec_goto: after 10,000 jumps back (a loop has one each time round), not after a number of
    records that grows with the file (a tight loop in a 50 MB file took half a minute)."""
    data = record('S', b'a@b.example') + record('p', b'%15d' % 0)
    loop = data.replace(b'%15d' % 0, b'%15d' % len(record('S', b'a@b.example'))) + b'\0' * 1_000_000
    with pytest.raises(MalformedQueueFile, match='too many reverse jump records'):
        read_envelope(write(tmp_path, loop))


def test_a_huge_recipient_list_is_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record limit fixed at 1,000,000 made a message of some 333,000 recipients (three records each, as cleanup
    writes them) malformed; the limit now grows with the file. Shown with a small fixed limit."""
    monkeypatch.setattr(postfix_records, '_MAX_RECORDS', 100)
    recipients = [f'r{n}@d{n % 7}.example' for n in range(200)]
    envelope, _ = read_envelope(write(tmp_path, cleanup_file(recipients)))
    assert len(envelope.recipient_domains) == 200


def test_a_vanished_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_envelope(str(tmp_path / 'GONE12345'))


def test_domains_are_named_as_qshape_names_them() -> None:
    assert domain_of('User@Example.COM') == 'example.com'
    assert domain_of('') == 'MAILER-DAEMON'
    assert domain_of('a@b..example.') == 'b.example'
    assert domain_of('@x@.Mail.Example') == 'mail.example'
    assert domain_of('local-only') == 'local-only'


DEFER_LOG = """\
recipient=a@gmail.com
offset=244
dsn_orig_rcpt=rfc822;a@gmail.com
status=4.7.28
action=delayed
reason=host gmail-smtp-in.l.google.com said: 421-4.7.28 Our system has detected an unusual rate

recipient=b@yahoo.com
offset=300
status=4.2.1
action=delayed
reason=host mta5.am0.yahoodns.net said: 450 4.2.1 mailbox busy (in reply to RCPT TO command)
"""


def test_defer_logs_give_distinct_status_codes_never_the_text(tmp_path: Path) -> None:
    path = tmp_path / 'defer'
    path.write_text(DEFER_LOG)
    assert read_defer_statuses(str(path)) == ('4.7.28', '4.2.1')
    path.write_text(DEFER_LOG + '\n' + DEFER_LOG.replace('4.2.1', '4.7.28'))
    assert read_defer_statuses(str(path)) == ('4.7.28',)  # the last block of a recipient wins


def test_a_defer_log_without_a_valid_status_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / 'defer'
    path.write_text(DEFER_LOG.replace('status=4.7.28\n', '').replace('status=4.2.1', 'status=try again later'))
    assert read_defer_statuses(str(path)) == ('unknown',)
    path.write_bytes(b'\x00\xff garbage')
    assert read_defer_statuses(str(path)) == ()
