"""A made-up but plausible week of feedback events, for the documentation screenshot and the browser test.

Deterministic: the same events (and keys) every time. Addresses are under example.org, sending IPs in RFC 5737
ranges. Volumes are chosen so the complaint rates of some ISPs and segments cross the 0.1 % and 0.3 % lines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.store import connect_sqlite, migrate
from mailinfra_agent.store.events import insert_events

__all__ = ['ISPS', 'SEGMENTS', 'demo_events', 'write_demo_store']

START = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 7
ISPS = ('gmail', 'microsoft', 'yahoo', 'gmx')
SEGMENTS = ('newsletter', 'promotions', 'winback')
STREAM_IPS = {'marketing': '192.0.2.10', 'bulk': '198.51.100.20'}
SEGMENT_STREAM = {'newsletter': 'marketing', 'promotions': 'marketing', 'winback': 'bulk'}
VOLUME = {'gmail': 400, 'microsoft': 250, 'yahoo': 150, 'gmx': 100}
"""Messages sent per day and segment to each ISP."""
COMPLAINTS_PER_10K = {'newsletter': 6, 'promotions': 20, 'winback': 45}
HARD_PER_1K = {'newsletter': 4, 'promotions': 8, 'winback': 35}
DIAGNOSTICS = {
    'gmail': (
        'bad-mailbox',
        "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's"
        ' email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser {id} - gsmtp',
    ),
    'microsoft': ('bad-mailbox', '550 5.5.0 Requested action not taken: mailbox unavailable ({id})'),
    'yahoo': ('inactive-mailbox', "554 delivery error: dd This user doesn't have a yahoo.com account ({rcpt}) [0]"),
    'gmx': ('bad-mailbox', '550 Requested action not taken: mailbox unavailable / Mailbox not found {id}'),
}
DEFERRAL = (
    'policy-related',
    '421-4.7.28 [{ip}] Our system has detected an unusual rate of unsolicited mail originating from your IP'
    ' address. https://support.google.com/mail/?p=UnsolicitedRateLimitError {id} - gsmtp',
)


def demo_events() -> list[Event]:
    events: list[Event] = []
    for day in range(DAYS):
        base = (START + timedelta(days=day)).timestamp()
        for isp in ISPS:
            for segment in SEGMENTS:
                stream = SEGMENT_STREAM[segment]
                ip = STREAM_IPS[stream]
                # Rates drift over the week: complaints rise on gmail and yahoo, fall elsewhere.
                drift = 1 + (day - 3) * (0.15 if isp in ('gmail', 'yahoo') else -0.1)
                sent = VOLUME[isp]
                hard = round(sent * HARD_PER_1K[segment] / 1000 * (1 + 0.1 * (day % 3)))
                complaints = round(sent * COMPLAINTS_PER_10K[segment] / 10000 * drift * (2 if isp == 'yahoo' else 1))
                deferred = sent // 20 if isp == 'gmail' else sent // 50
                expired = 1 if segment == 'winback' and day % 2 else 0
                common = {'stream': stream, 'sending_ip': ip, 'isp': isp, 'segment': segment}

                event = partial(_event, day, base, common)
                for number in range(sent):
                    events.append(event('delivery', 'sent', number, 60 + number * 7.0))
                for number in range(hard):
                    category, text = DIAGNOSTICS[isp]
                    recipient = f'gone-{number}@{isp}.example.org'
                    diagnostic = text.format(id=f'a{day}{number:04d}f3c9e1{isp[:2]}', rcpt=recipient)
                    events.append(
                        event('delivery', 'bounced', number, 3600 + number, category=category, diagnostic=diagnostic)
                    )
                for number in range(deferred):
                    category, text = DEFERRAL
                    diagnostic = text.format(ip=ip, id=f'b{day}{number:05d}x9')
                    events.append(
                        event('delivery', 'deferred', number, 7200 + number, category=category, diagnostic=diagnostic)
                    )
                for number in range(expired):
                    diagnostic = '451 4.4.1 connection timed out after 5 days'
                    events.append(
                        event(
                            'delivery', 'expired', number, 9000, category='no-answer-from-host', diagnostic=diagnostic
                        )
                    )
                for number in range(complaints):
                    events.append(event('complaint', 'complaint', number, 40000 + number, feedback_type='abuse'))
    return events


def _event(
    day: int, base: float, common: dict[str, str], kind: str, status: str, number: int, offset: float, **extra: str
) -> Event:
    recipient = f'{common["segment"]}-{number}@{common["isp"]}.example.org'
    return Event(
        key=event_key('demo', kind, status, day, common['isp'], common['segment'], number),
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        time=base + offset,
        recipient=recipient,
        source='demo',
        **common,  # type: ignore[arg-type]
        **extra,  # type: ignore[arg-type]
    )


def write_demo_store(path: Path) -> None:
    """A SQLite store at ``path`` (replaced) holding :func:`demo_events`."""
    path.unlink(missing_ok=True)
    with connect_sqlite(path) as db:
        migrate(db)
        with db.transaction():
            insert_events(db, demo_events())
