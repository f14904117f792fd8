"""``mailinfra audit``: check a deployment against the Gmail, Yahoo and Microsoft bulk-sender requirements.

Takes the live-DNS options of ``mailinfra dns check`` (same names and meanings) and runs its checks; adds the
rendered MTA configuration (TLS, DKIM signing) and the spec (one-click unsubscribe). Exit codes: 0 every
requirement passes ("not measurable" and "not applicable" lines allowed); 1 a requirement fails; 2 could not
check (a name server unusable, or findings unchecked without --allow-unchecked).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from .. import api
from ..audit import BULK_PER_DAY, REQUIREMENTS, SOURCES, AuditReport, audit
from ..dnscheck import CannotCheck
from .common import addresses_from
from .dns_cmd import add_live_dns_options, live_dns_report

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_CHECK = 0, 1, 2


def _code(report: AuditReport) -> int:
    return EXIT_FAILED if report.failed else EXIT_CANNOT_CHECK if report.incomplete else EXIT_OK


def _text(report: AuditReport) -> str:
    lines = [f'Bulk senders: {BULK_PER_DAY:,} or more mails a day per primary domain (Gmail, Microsoft):']
    for volume in report.volumes:
        verdict = (
            'the requirements apply' if volume.bulk else 'below the threshold (the requirements are good practice)'
        )
        shares = ', '.join(f'{name} about {count:,}' for name, count in volume.by_provider)
        lines.append(
            f'  {volume.domain}: about {volume.per_day:,} a day (monthly volume / 30 of {", ".join(volume.streams)}; '
            f'by recipient mix: {shares}): {verdict}'
        )
    for requirement, info in REQUIREMENTS.items():
        findings = [finding for finding in report.findings if finding.requirement == requirement]
        if not findings:
            continue
        lines += ['', f'{requirement}: {info.title}']
        width = max(len(finding.status) for finding in findings)
        for finding in findings:
            lines.append(f'  {finding.status.upper():<{width}}  {finding.subject}: {finding.reason}')
            if finding.fix:
                lines.append(f'  {"":<{width}}  fix: {finding.fix}')
        lines.append('  source: ' + '; '.join(f'{SOURCES[key].title} <{SOURCES[key].url}>' for key in info.sources))
    counts = report.summary()
    shown = ', '.join(f'{count} {status}' for status, count in counts.items() if count)
    lines += ['', f'{len(report.findings)} findings: {shown}']
    return '\n'.join(lines)


def cmd_audit(args: argparse.Namespace) -> int:
    spec = api.load_spec(args.spec, as_of=args.as_of)
    try:
        dns = live_dns_report(args, spec)
    except CannotCheck as error:
        if args.format == 'json':
            print(json.dumps({'ok': False, 'exit': EXIT_CANNOT_CHECK, 'cannot_check': str(error)}, indent=2))
        else:
            print(f'cannot check: {error}', file=sys.stderr)
        return EXIT_CANNOT_CHECK
    rendered = api.render_files(spec, renderers=['mta'], addresses=addresses_from(args.terraform_output, spec))
    report = audit(spec, dns, {path: output.content for path, output in rendered.items()})
    code = _code(report)
    if args.format == 'json':
        document = {
            'ok': code == EXIT_OK,
            'exit': code,
            'servers': dns.servers,
            'allow_unchecked': report.allow_unchecked,
            'bulk_per_day': BULK_PER_DAY,
            'volumes': [volume.as_dict() for volume in report.volumes],
            'summary': report.summary(),
            'findings': [finding.as_dict() for finding in report.findings],
        }
        print(json.dumps(document, indent=2))
        return code
    print(_text(report))
    if report.failed:
        print('the deployment does not meet the bulk-sender requirements: see the failed lines above', file=sys.stderr)
    elif report.incomplete:
        print(
            'some requirements could not be checked: give --resolver (and --terraform-output, --keys), or '
            '--allow-unchecked to accept them unchecked',
            file=sys.stderr,
        )
    return code


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    command = with_spec(
        'audit',
        'check the Gmail, Yahoo and Microsoft bulk-sender requirements (SPF, DKIM, DMARC and alignment, FCrDNS, '
        'TLS, one-click unsubscribe, spam rate) on the live DNS, the rendered MTA configuration and the spec',
    )
    command.description = (
        'Requirements: ' + ', '.join(REQUIREMENTS) + '. The live-DNS options are those of `mailinfra dns check`. '
        'Each finding says pass/fail, the source of the requirement and the fix; the spam rate is "not measurable" '
        'until Postmaster Tools data is ingested. Exit codes: 0 all requirements pass, 1 one fails, 2 could not '
        'check.'
    )
    add_live_dns_options(command)
    command.add_argument('--format', choices=['text', 'json'], default='text')
    command.set_defaults(func=cmd_audit)
