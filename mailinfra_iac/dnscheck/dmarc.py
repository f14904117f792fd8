"""DMARC at ``_dmarc.<domain>`` for every sending domain, and report destinations on other domains.

``dmarc-present``: exactly one record starting ``v=DMARC1`` (receivers apply no policy when there
are several), a well-formed tag list. ``dmarc-policy``: ``p=`` is none, quarantine or reject, and
the one the spec asks for (a difference fails). ``dmarc-rua``: aggregate reports requested
with ``mailto:`` addresses. ``dmarc-report-authorised``: every ``rua``/``ruf`` destination in another
organisational domain publishes ``<domain>._report._dmarc.<destination>`` TXT ``v=DMARC1``
(RFC 7489 section 7.1), or receivers send it nothing. The destinations come from the served record,
since that is what receivers read. ``dmarc-matches-spec``: the served record is the rendered one,
compared tag by tag (RFC 7489 allows spaces around ``=`` and ``;``, any tag order after ``v=``, and
leaves out tags at their defaults, so those forms are equal); a different policy, rua or any other
tag fails.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from mailinfra_agent.dns.client import Answer, DnsClient

from .expected import DmarcSubject, Expectations
from .results import NOT_ASKED, CheckResult, Status, shorten, skipped

POLICIES = ('none', 'quarantine', 'reject')


class DmarcSyntaxError(ValueError):
    pass


_VERSION = re.compile(r'\s*[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)')
"""RFC 7489 6.4: ``dmarc-version = "v" *WSP "=" *WSP %x44.4d.41.52.43.31`` then ``;`` or the end."""
DEFAULTS = {'adkim': 'r', 'aspf': 'r', 'fo': '0', 'pct': '100', 'rf': 'afrf', 'ri': '86400'}
"""Tags that mean the same absent as at these values (RFC 7489 6.3)."""


def is_dmarc(value: str) -> bool:
    return _VERSION.match(value) is not None


def parse(value: str) -> dict[str, str]:
    """The tags of a DMARC record; raises :class:`DmarcSyntaxError`."""
    tags: dict[str, str] = {}
    for part in value.split(';'):
        if not part.strip():
            continue
        name, sep, tag_value = part.partition('=')
        name = name.strip().lower()
        if not sep or not name.isalnum():
            raise DmarcSyntaxError(f'malformed tag "{part.strip()}"')
        if name in tags:
            raise DmarcSyntaxError(f'tag "{name}" appears twice')
        tags[name] = tag_value.strip()
    if next(iter(tags), None) != 'v' or tags['v'] != 'DMARC1':
        raise DmarcSyntaxError('the record must start with "v=DMARC1"')
    return tags


def uris(tags: dict[str, str], name: str) -> list[str]:
    return [uri.strip() for uri in tags.get(name, '').split(',') if uri.strip()]


def destination(uri: str) -> str | None:
    """The domain a ``mailto:`` report URI sends to (``None`` for other schemes)."""
    if not uri.lower().startswith('mailto:'):
        return None
    address = unquote(uri[7:].split('!', 1)[0])
    return address.rpartition('@')[2].lower().rstrip('.') or None


def _unasked(answer: Answer) -> tuple[Status, str]:
    if answer.unchecked:
        return 'unchecked', NOT_ASKED
    return 'fail', f'cannot ask: {answer.error}'


def normalised(tags: dict[str, str]) -> dict[str, str]:
    """Tags with defaults filled in, keyword values in lower case, URI lists without spaces."""
    found = {**DEFAULTS, 'sp': tags.get('p', '').lower(), **tags}
    for name in ('p', 'sp', 'adkim', 'aspf', 'rf'):
        found[name] = found[name].lower()
    for name in ('rua', 'ruf'):
        if name in found:
            found[name] = ','.join(uris(found, name))
    found['fo'] = ':'.join(option.strip() for option in found['fo'].split(':'))
    return found


def _matches_spec(subject: DmarcSubject, record: str, tags: dict[str, str]) -> tuple[Status, str]:
    if subject.rendered is None:
        return 'unchecked', '_dmarc is in no managed zone: there is no rendered record to compare with'
    if record == subject.rendered:
        return 'pass', 'the rendered record'
    try:
        rendered = normalised(parse(subject.rendered))
    except DmarcSyntaxError as error:
        return 'fail', f'the rendered record "{subject.rendered}" is invalid: {error}'
    served = normalised(tags)
    differences = [
        f'{name}={served.get(name, "(none)")} where the spec has {rendered.get(name, "(none)")}'
        for name in sorted(set(served) | set(rendered))
        if served.get(name) != rendered.get(name)
    ]
    if differences:
        return 'fail', f'differs from the rendered "{subject.rendered}": {shorten(differences)}'
    return 'pass', 'the rendered record'


def _record(answer: Answer) -> tuple[Status, str, dict[str, str] | None]:
    if not answer.ok:
        return (*_unasked(answer), None)
    records = [value for value in answer.values if is_dmarc(value)]
    if not records:
        return 'fail', f'no v=DMARC1 record ({answer.rcode}): receivers apply no DMARC policy', None
    if len(records) > 1:
        return 'fail', f'{len(records)} v=DMARC1 records: receivers ignore them all', None
    try:
        tags = parse(records[0])
    except DmarcSyntaxError as error:
        return 'fail', f'invalid record "{records[0]}": {error}', None
    return 'pass', records[0], tags


def _policy(subject: DmarcSubject, tags: dict[str, str]) -> tuple[Status, str]:
    policy = tags.get('p')
    if policy is None:
        return 'fail', 'no p= tag'
    if policy.lower() not in POLICIES:
        return 'fail', f'p={policy} is not none, quarantine or reject'
    if policy.lower() != subject.policy:
        return 'fail', f'p={policy}, the spec asks for p={subject.policy}'
    return 'pass', f'p={policy}'


def _rua(subject: DmarcSubject, tags: dict[str, str]) -> tuple[Status, str]:
    found = uris(tags, 'rua')
    if not found:
        return 'fail', 'no rua=: nobody receives aggregate reports'
    others = [uri for uri in found if destination(uri) is None]
    if others:
        return 'warn', f'rua without mailto: ({shorten(others)}): receivers send aggregate reports by mail'
    served = {unquote(uri[7:].split('!', 1)[0]).lower() for uri in found}
    missing = [address for address in subject.rua if address.lower() not in served]
    if missing:
        return 'fail', f'rua={",".join(found)}; the spec also asks for {shorten(missing)}'
    return 'pass', f'rua={",".join(found)}'


_DEPENDENT = ('dmarc-policy', 'dmarc-rua', 'dmarc-matches-spec')


def _subject(
    expected: Expectations, subject: DmarcSubject, answer: Answer, server: str
) -> tuple[list[CheckResult], list[str]]:
    """The results for one domain and the authorisation records still to ask."""
    fqdn = subject.fqdn
    status, record, tags = _record(answer)  # when it passes, the reason is the record
    results = [CheckResult('dmarc-present', fqdn, status, record, server)]
    if tags is None:
        because = 'dmarc-present is not checked' if status == 'unchecked' else 'no single valid DMARC record'
        return results + [skipped(check, fqdn, server, because) for check in _DEPENDENT], []
    status, reason = _policy(subject, tags)
    results.append(CheckResult('dmarc-policy', fqdn, status, reason, server))
    status, reason = _rua(subject, tags)
    results.append(CheckResult('dmarc-rua', fqdn, status, reason, server))
    status, reason = _matches_spec(subject, record, tags)
    results.append(CheckResult('dmarc-matches-spec', fqdn, status, reason, server))
    own = expected.organisation(subject.domain)
    targets: list[str] = []
    for uri in uris(tags, 'rua') + uris(tags, 'ruf'):
        target = destination(uri)
        if target and expected.organisation(target) != own and target not in targets:
            targets.append(target)
    return results, [f'{subject.domain}._report._dmarc.{target}' for target in targets]


def _authorised(name: str, answer: Answer, server: str) -> CheckResult:
    if not answer.ok:
        status, reason = _unasked(answer)
    elif any(is_dmarc(value) for value in answer.values):
        status, reason = 'pass', 'v=DMARC1: the destination accepts reports for this domain'
    else:
        status, reason = 'fail', f'no v=DMARC1 record ({answer.rcode}): receivers send no reports there'
    return CheckResult('dmarc-report-authorised', name, status, reason, server)


async def check(client: DnsClient, expected: Expectations) -> list[CheckResult]:
    server = client.server
    answers = await client.ask_all([(subject.fqdn, 'TXT') for subject in expected.dmarc])
    parts = [_subject(expected, s, a, server) for s, a in zip(expected.dmarc, answers, strict=True)]
    client.prefetch([(name, 'TXT') for _, names in parts for name in names])
    results = []
    for found, names in parts:
        results += found
        for name in names:
            results.append(_authorised(name, await client.ask(name, 'TXT'), server))
    return results
