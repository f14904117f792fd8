"""DMARC at ``_dmarc.<domain>`` for every sending domain, and report destinations on other domains.

``dmarc-present``: exactly one record starting ``v=DMARC1`` (receivers apply no policy when there
are several), a well-formed tag list. ``dmarc-policy``: ``p=`` is none, quarantine or reject, and
the one the spec asks for (a difference is a warning). ``dmarc-rua``: aggregate reports requested
with ``mailto:`` addresses. ``dmarc-report-authorised``: every ``rua``/``ruf`` destination in another
organisational domain publishes ``<domain>._report._dmarc.<destination>`` TXT ``v=DMARC1``
(RFC 7489 section 7.1), or receivers send it nothing. The destinations come from the served record,
since that is what receivers read.
"""

from __future__ import annotations

from mailinfra_agent.dns.client import Answer, DnsClient

from .expected import DmarcSubject, Expectations
from .results import CheckResult, Status, shorten

POLICIES = ('none', 'quarantine', 'reject')


class DmarcSyntaxError(ValueError):
    pass


def is_dmarc(value: str) -> bool:
    return value.lstrip()[:8].lower() == 'v=dmarc1'


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
    address = uri[7:].split('!', 1)[0]
    return address.rpartition('@')[2].lower().rstrip('.') or None


def _unasked(answer: Answer) -> tuple[Status, str]:
    if answer.unchecked:
        return 'warn', "outside the deployment's zones: not checked (give --resolver to check it)"
    return 'fail', f'cannot ask: {answer.error}'


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
        return 'warn', f'p={policy}, the spec asks for p={subject.policy}'
    return 'pass', f'p={policy}'


def _rua(subject: DmarcSubject, tags: dict[str, str]) -> tuple[Status, str]:
    found = uris(tags, 'rua')
    if not found:
        return 'fail', 'no rua=: nobody receives aggregate reports'
    others = [uri for uri in found if destination(uri) is None]
    if others:
        return 'warn', f'rua without mailto: ({shorten(others)}): receivers send aggregate reports by mail'
    served = {uri[7:].split('!', 1)[0].lower() for uri in found}
    missing = [address for address in subject.rua if address.lower() not in served]
    if missing:
        return 'warn', f'rua={",".join(found)}; the spec also asks for {shorten(missing)}'
    return 'pass', f'rua={",".join(found)}'


def _subject(
    expected: Expectations, subject: DmarcSubject, answer: Answer, server: str
) -> tuple[list[CheckResult], list[str]]:
    """The results for one domain and the authorisation records still to ask."""
    status, reason, tags = _record(answer)
    results = [CheckResult('dmarc-present', subject.fqdn, status, reason, server)]
    if tags is None:
        return results, []
    status, reason = _policy(subject, tags)
    results.append(CheckResult('dmarc-policy', subject.fqdn, status, reason, server))
    status, reason = _rua(subject, tags)
    results.append(CheckResult('dmarc-rua', subject.fqdn, status, reason, server))
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
    answers = await client.ask_all([(subject.fqdn, 'TXT') for subject in expected.dmarc])
    parts = [_subject(expected, s, a, client.server) for s, a in zip(expected.dmarc, answers, strict=True)]
    client.prefetch([(name, 'TXT') for _, names in parts for name in names])
    results = []
    for found, names in parts:
        results += found
        for name in names:
            results.append(_authorised(name, await client.ask(name, 'TXT'), client.server))
    return results
