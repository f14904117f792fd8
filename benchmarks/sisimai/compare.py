"""Our inbound-message parser and bounce classifier against Sisimai on Sisimai's public corpus of real bounces.

Usage (from the repository root, venv active; the corpus is not in this repository)::

    git clone https://github.com/sisimai/set-of-emails /var/tmp/set-of-emails
    python benchmarks/sisimai/compare.py /var/tmp/set-of-emails/maildir/bsd [--details] [--json] [--check]

Each ``*.eml`` goes through the path ``mailinfra-agent ingest message`` takes: ``feedback.message.parse_message``
(no signing keys, so no VERP or token of ours verifies), then each bounce event is classified as ingest's writer
does (``Classifier.classify(diagnostic, status=dsn, code=smtp_code)``, the catalogue's rules, no ISP, no stream).
What Sisimai 5.1.0 (the Perl implementation, an independent parser and classifier) found in the same messages is
``sisimai-v5.1.0.json`` beside this script, written by ``sisimai_dump.pl`` (its header says how).

Per message, one verdict:

- ``crash``: anything but ``EventError`` raised (must never happen);
- ``refused:<reason>``: we give no event (``no-delivery-status``: a text bounce without an RFC 3464 part, which we
  do not read by design; ``auto-reply``, ...), while Sisimai gives a bounce or a complaint;
- ``recipients``: our recipients are not Sisimai's;
- ``unsafe``: a recipient Sisimai sees blocked for policy, spam or reputation that we would suppress (a hard
  outcome): the one disagreement that must not exist; ``hard-where-sisimai-soft``: a hard outcome where Sisimai's
  reason is ambiguous (:data:`SISIMAI_AMBIGUOUS`);
- ``category``: our category is not one compatible with Sisimai's reason (:data:`COMPATIBLE`);
- ``status``: our RFC 3463 code differs from Sisimai's (only where Sisimai's is a registered code, not one of its
  own ``X.0.9xx``), or Sisimai's ``delivered`` is not our ``sent``, its ``feedback`` not our complaint;
- ``agreed``; ``both-nothing``: neither finds an event (``sisimai-nothing``: Sisimai finds none and we do).

It prints the tallies (and, with ``--details``, each disagreement); with ``--check`` it exits 1 when a message
crashed the parser or got ``unsafe``. Standard library plus the repository (the catalogue is read through
``mailinfra_iac``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from mailinfra_agent.feedback.classify import Classifier
from mailinfra_agent.feedback.events import Event, EventError
from mailinfra_agent.feedback.message import parse_message
from mailinfra_iac.catalogue.bounce_rules import compile_rules

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / 'sisimai-v5.1.0.json'

REPUTATION = frozenset({'policy-related', 'spam-related'})
COMPATIBLE: dict[str, frozenset[str]] = {
    'userunknown': frozenset({'bad-mailbox'}),
    'hostunknown': frozenset({'bad-domain'}),
    'hasmoved': frozenset({'bad-mailbox', 'inactive-mailbox'}),
    'suspend': frozenset({'inactive-mailbox'}),
    'mailboxfull': frozenset({'quota-issues'}),
    'exceedlimit': frozenset({'quota-issues', 'content-related'}),
    'mesgtoobig': frozenset({'quota-issues', 'content-related'}),
    'systemfull': frozenset({'quota-issues', 'bad-configuration'}),
    'blocked': REPUTATION,
    'badreputation': REPUTATION,
    'spamdetected': REPUTATION | {'content-related'},
    'policyviolation': REPUTATION | {'content-related'},
    'authfailure': REPUTATION,
    'requireptr': REPUTATION,
    'toomanyconn': REPUTATION,
    'speeding': REPUTATION,
    'securityerror': REPUTATION | {'invalid-sender'},
    'rejected': REPUTATION | {'invalid-sender'},
    'notcompliantrfc': REPUTATION | {'content-related', 'protocol-errors'},
    'contenterror': frozenset({'content-related'}),
    'virusdetected': frozenset({'virus-related', 'content-related'}),
    'filtered': REPUTATION | {'content-related', 'bad-mailbox', 'inactive-mailbox'},
    'norelaying': frozenset({'relaying-issues'}),
    'notaccept': REPUTATION | {'bad-domain'},
    'networkerror': frozenset({'no-answer-from-host', 'bad-connection', 'routing-errors', 'bad-domain'}),
    'expired': frozenset({'message-expired', 'no-answer-from-host', 'bad-connection', 'routing-errors', 'bad-domain'}),
    'syntaxerror': frozenset({'protocol-errors'}),
    'systemerror': frozenset({'bad-configuration', 'routing-errors', 'other'}),
    'mailererror': frozenset({'bad-configuration', 'other'}),
}
"""Sisimai reason -> our categories that mean the same. ``onhold`` and ``undefined`` (Sisimai cannot tell) accept any
category; a reason not listed here is reported as ``category``."""
SISIMAI_REPUTATION = frozenset(
    {'blocked', 'badreputation', 'spamdetected', 'policyviolation', 'authfailure', 'requireptr', 'toomanyconn',
     'speeding', 'securityerror', 'notcompliantrfc', 'contenterror', 'virusdetected', 'norelaying'}
)  # fmt: skip
"""Sisimai reasons about the sender, its content or its reputation, never a dead recipient: a hard outcome on one
would suppress a good address (``unsafe``)."""
SISIMAI_AMBIGUOUS = frozenset({'filtered', 'rejected', 'notaccept'})
"""Sisimai reasons that are not hard bounces for it but may be for us (``hard-where-sisimai-soft``): ``filtered`` and
``rejected`` for a "User unknown" refused after DATA (Sisimai's reading of Japanese carriers: a recipient's
filter refusing the sender), ``notaccept`` for a null MX (RFC 7505: the domain takes no mail, a bad domain for us)."""


def classifier() -> Classifier:
    rules = compile_rules()
    return Classifier(rules.rules, rules.max_text)


def ours(data: bytes, name: str, rules: Classifier) -> tuple[str | None, list[dict[str, Any]]]:
    """(the EventError reason or None, our events as dicts); ``crash:<type>`` for anything else raised."""
    try:
        events = parse_message(data, f'maildir:{name}', received=0.0)
    except EventError as error:
        return error.reason, list(map(_plain, getattr(error, 'events', None) or []))
    except Exception as error:  # the probe counts crashes, it must not stop at one
        return f'crash:{type(error).__name__}: {error}', []
    return None, [_classified(event, rules) for event in events]


def _plain(event: Event) -> dict[str, Any]:
    return {'recipient': event.recipient, 'kind': event.kind, 'status': event.status, 'dsn': event.dsn}


def _classified(event: Event, rules: Classifier) -> dict[str, Any]:
    found = _plain(event) | {'code': event.smtp_code, 'category': None, 'outcome': None, 'rule': None}
    if event.kind == 'dsn' and event.status != 'sent' and (event.diagnostic or event.dsn or event.smtp_code):
        result = rules.classify(event.diagnostic or '', status=event.dsn, code=event.smtp_code)
        found |= {'category': result.category, 'outcome': result.outcome, 'rule': result.rule or result.origin}
    return found


def _registered(status: str) -> bool:
    """Whether Sisimai's status is a real RFC 3463 code, not one it made up (``5.0.9xx``, ``4.0.9xx``)."""
    parts = status.split('.')
    return len(parts) == 3 and not (parts[1] == '0' and len(parts[2]) == 3 and parts[2].startswith('9'))


def verdict(refused: str | None, mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> tuple[str, str]:
    """(class, detail) of one message."""
    if refused is not None and refused.startswith('crash:'):
        return 'crash', refused
    if not theirs:
        return ('both-nothing', refused or '') if not mine else ('sisimai-nothing', f'we: {len(mine)} event(s)')
    if not mine:
        reasons = ','.join(sorted({fact['reason'] for fact in theirs}))
        return f'refused:{refused}', f'sisimai: {reasons}'
    by_recipient = {event['recipient']: event for event in mine}
    wanted = {fact['recipient'].lower() for fact in theirs}
    if set(by_recipient) != wanted:
        return 'recipients', f'we {sorted(by_recipient)} sisimai {sorted(wanted)}'
    worst = ('agreed', '')
    for fact in theirs:
        event, reason = by_recipient[fact['recipient'].lower()], fact['reason']
        if reason in SISIMAI_REPUTATION and event['outcome'] == 'hard':
            return 'unsafe', f'{reason}: we {event["category"]} (hard, rule {event["rule"]})'
        if reason in SISIMAI_AMBIGUOUS and event['outcome'] == 'hard':
            return 'hard-where-sisimai-soft', f'{reason}: we {event["category"]} (rule {event["rule"]})'
        if reason == 'feedback':
            found = ('agreed', '') if event['kind'] == 'complaint' else ('status', f'feedback: we {event["kind"]}')
        elif reason == 'delivered':
            found = ('agreed', '') if event['status'] == 'sent' else ('status', f'delivered: we {event["status"]}')
        elif event['category'] is None:
            found = ('status', f'{reason}: we {event["kind"]}/{event["status"]}, nothing to classify')
        elif reason not in ('onhold', 'undefined') and event['category'] not in COMPATIBLE.get(reason, ()):
            found = ('category', f'{reason}: we {event["category"]} (rule {event["rule"]})')
        elif _registered(fact['status']) and event['dsn'] and event['dsn'] != fact['status']:
            found = ('status', f'{reason}: we {event["dsn"]}, sisimai {fact["status"]}')
        else:
            found = ('agreed', '')
        if worst[0] == 'agreed' or (found[0] == 'category' and worst[0] == 'status'):
            worst = found if found[0] != 'agreed' else worst
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('corpus', type=Path, help='set-of-emails/maildir/bsd')
    parser.add_argument('--expected', type=Path, default=EXPECTED, help='sisimai_dump.pl output')
    parser.add_argument('--details', action='store_true', help='print each message that is not agreed')
    parser.add_argument('--json', action='store_true', help='every verdict, machine-readable')
    parser.add_argument('--check', action='store_true', help='exit 1 on a crash or an unsafe verdict')
    args = parser.parse_args(argv)
    expected = json.loads(args.expected.read_text(encoding='utf-8'))['messages']
    paths = sorted(args.corpus.glob('*.eml'))
    if not paths:
        parser.error(f'{args.corpus}: no *.eml files (fetch the corpus: see the docstring)')
    rules = classifier()
    verdicts: dict[str, tuple[str, str]] = {}
    for path in paths:
        refused, mine = ours(path.read_bytes(), path.name, rules)
        verdicts[path.name] = verdict(refused, mine, expected.get(path.name, []))
    tally = Counter(kind for kind, _ in verdicts.values())
    reports = [name for name in verdicts if any(fact['reason'] == 'feedback' for fact in expected.get(name, []))]
    complaints = Counter(verdicts[name][0] for name in reports)
    failed = int(args.check and (tally['crash'] > 0 or tally['unsafe'] > 0))
    if args.json:
        result = {'tally': dict(sorted(tally.items())), 'complaints': dict(sorted(complaints.items()))}
        print(json.dumps(result | {'verdicts': verdicts}, indent=1, sort_keys=True))
        return failed
    if args.details:
        for name, (kind, detail) in verdicts.items():
            if kind not in ('agreed', 'both-nothing'):
                print(f'{kind:28} {name:34} {detail}')
    print(f'{len(paths)} messages ({sum(1 for p in paths if p.name in expected)} with a Sisimai answer)')
    for kind, count in sorted(tally.items(), key=lambda item: (-item[1], item[0])):
        print(f'  {kind:28} {count}')
    print(f'of which {len(reports)} complaint reports (Sisimai: feedback)')
    for kind, count in sorted(complaints.items(), key=lambda item: (-item[1], item[0])):
        print(f'  {kind:28} {count}')
    return failed


if __name__ == '__main__':
    sys.exit(main())
