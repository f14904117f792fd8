"""DKIM key records at every active selector (the spec's selectors, with their Ed25519 twins).

``dkim-present``: exactly one TXT record, a well-formed key record (RFC 6376 3.6.1).
``dkim-not-revoked``: its ``p=`` is not empty.
``dkim-key-size``: an RSA key of at least 2048 bits (RFC 8301; verifiers need not go past 4096).
``dkim-key-matches``: the key bytes equal the key the key source holds for the selector, whatever
the spacing, tag order or chunking of the served text.

``dkim-present`` also fails a record our signatures cannot verify against (RFC 6376 3.6.1): an
``h=`` without sha256 (we sign rsa-sha256 and ed25519-sha256) or an ``s=`` without ``email`` or ``*``.
``dkim-key-matches`` compares the whole record with the rendered one: the key bytes and every other
tag (``k=rsa`` is the default, so its absence matches; spacing, tag order and chunking do not matter).

When the record is missing or malformed the dependent checks are reported as skipped; when it is
revoked, the size and the comparison are too (there is no key to measure or compare).
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra_agent.dns.client import Answer, DnsClient

from ..dkim import RecordFormatError, record_fingerprint, record_key
from ..dkim.keys import MAX_RSA_BITS, MIN_RSA_BITS, KeyAlgorithm, parse_txt_value
from .expected import DkimSubject, Expectations
from .results import NOT_ASKED, CheckResult, Status, skipped


def _size(algorithm: KeyAlgorithm, material: bytes) -> tuple[Status, str]:
    if algorithm is KeyAlgorithm.ED25519:
        if len(material) != 32:
            return 'fail', f'an Ed25519 key is 32 bytes, this p= has {len(material)}'
        return 'pass', 'Ed25519 (256 bits)'
    try:
        key = serialization.load_der_public_key(material)
    except (ValueError, UnsupportedAlgorithm):
        return 'fail', 'p= is not a DER RSA public key'
    if not isinstance(key, rsa.RSAPublicKey):
        return 'fail', f'k=rsa but p= holds a {type(key).__name__}'
    bits = key.key_size
    if bits < MIN_RSA_BITS:
        return 'fail', f'RSA key of {bits} bits: at least {MIN_RSA_BITS} (RFC 8301); forgeable keys hurt the domain'
    if bits > MAX_RSA_BITS:
        return 'warn', f'RSA key of {bits} bits: verifiers need only handle up to {MAX_RSA_BITS}'
    return 'pass', f'RSA {bits} bits'


def _describe(value: str) -> str:
    try:
        algorithm, _ = record_key(value)
        found = record_fingerprint(value)
    except RecordFormatError as error:
        return str(error)
    return f'{algorithm.value} key {found}' if found else f'revoked {algorithm.value} record'


def _tags(value: str) -> dict[str, str]:
    """The tags of a key record in a canonical form: whitespace dropped inside values, defaults filled in."""
    tags = {name: ''.join(tag_value.split()) for name, tag_value in parse_txt_value(value).items()}
    tags.setdefault('v', 'DKIM1')
    tags.setdefault('k', 'rsa')
    for listed in ('h', 's', 't'):  # colon-separated lists: names are case-insensitive
        if listed in tags:
            tags[listed] = tags[listed].lower()
    tags['k'] = tags['k'].lower()
    return tags


def _unusable(value: str) -> str | None:
    """Why a well-formed key record cannot verify our signatures, if it cannot (RFC 6376 3.6.1)."""
    tags = _tags(value)
    if 'h' in tags and 'sha256' not in tags['h'].split(':'):
        return (
            f'h={tags["h"]} excludes sha256: the key cannot verify our rsa-sha256/ed25519-sha256 signatures '
            '(RFC 6376 3.6.1)'
        )
    if 's' in tags and not {'email', '*'} & set(tags['s'].split(':')):
        return f's={tags["s"]} names neither email nor *: the key may not verify mail (RFC 6376 3.6.1)'
    return None


def _differences(served: str, rendered: str) -> list[str]:
    mine, theirs = _tags(served), _tags(rendered)
    return [
        f'{name}={mine.get(name, "(none)")} where the rendered record has {theirs.get(name, "(none)")}'
        if name != 'p'
        else 'another key'
        for name in sorted(set(mine) | set(theirs))
        if mine.get(name) != theirs.get(name)
    ]


_DEPENDENT = ('dkim-not-revoked', 'dkim-key-size', 'dkim-key-matches')


def _decode(subject: DkimSubject, value: str) -> tuple[KeyAlgorithm, bytes, str | None]:
    """The served record's key and why it cannot verify our signatures (if so); raises RecordFormatError."""
    local = subject.expected_key
    if value == subject.expected and isinstance(local, tuple):  # the usual case: decoded with the expectations
        return local[0], local[1], None  # ours is usable
    algorithm, material = record_key(value)
    return algorithm, material, None if value == subject.expected else _unusable(value)


def _subject(subject: DkimSubject, answer: Answer, server: str) -> list[CheckResult]:
    fqdn = subject.fqdn

    def result(check: str, status: Status, reason: str) -> CheckResult:
        return CheckResult(check, fqdn, status, reason, server)

    def rest(first: CheckResult, because: str, checks: tuple[str, ...] = _DEPENDENT) -> list[CheckResult]:
        return [first, *(skipped(check, fqdn, server, because) for check in checks)]

    if answer.unchecked:
        return rest(result('dkim-present', 'unchecked', NOT_ASKED), 'dkim-present is not checked')
    if not answer.ok:
        return rest(result('dkim-present', 'fail', f'cannot ask: {answer.error}'), 'no answer')
    if not answer.values:
        reason = f'no TXT record ({answer.rcode}): mail signed with {subject.selector} fails DKIM'
        return rest(result('dkim-present', 'fail', reason), 'no key record')
    if len(answer.values) > 1:
        reason = f'{len(answer.values)} TXT records: verifiers need exactly one'
        return rest(result('dkim-present', 'fail', reason), 'no single key record')
    value = answer.values[0]
    local = subject.expected_key
    try:
        algorithm, material, unusable = _decode(subject, value)
    except RecordFormatError as error:
        return rest(result('dkim-present', 'fail', str(error)), 'the key record is malformed')
    if unusable is not None:
        return rest(result('dkim-present', 'fail', unusable), 'the key record cannot verify our signatures')
    via = f' (via CNAME {" -> ".join(answer.chain)})' if answer.chain else ''
    results = [result('dkim-present', 'pass', f'{algorithm.value} key record{via}')]
    if not material:
        failed = result('dkim-not-revoked', 'fail', 'empty p=: the selector is revoked, signatures fail')
        return results + rest(failed, 'the selector is revoked', _DEPENDENT[1:])
    results.append(result('dkim-not-revoked', 'pass', 'p= holds a key'))
    status, reason = _size(algorithm, material)
    results.append(result('dkim-key-size', status, reason))
    if isinstance(local, str):
        results.append(result('dkim-key-matches', 'unchecked', f"the key store's record is unusable: {local}"))
        return results
    if local is None:
        results.append(result('dkim-key-matches', 'unchecked', 'the key store has no key for this selector to compare'))
    elif local != (algorithm, material):
        results.append(
            result(
                'dkim-key-matches',
                'fail',
                f'serves {_describe(value)}; the key store has {_describe(subject.expected or "")}',
            )
        )
    elif value != subject.expected and (differences := _differences(value, subject.expected or '')):
        results.append(result('dkim-key-matches', 'fail', "the key store's key, but " + '; '.join(differences)))
    else:
        results.append(result('dkim-key-matches', 'pass', f'the {algorithm.value} key in the key store'))
    return results


async def check(client: DnsClient, expected: Expectations) -> list[CheckResult]:
    answers = await client.ask_all([(subject.fqdn, 'TXT') for subject in expected.dkim])
    return [
        result
        for subject, answer in zip(expected.dkim, answers, strict=True)
        for result in _subject(subject, answer, client.server)
    ]
