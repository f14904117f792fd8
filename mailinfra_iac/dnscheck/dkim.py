"""DKIM key records at every active selector (the spec's selectors, with their Ed25519 twins).

``dkim-present``: exactly one TXT record, a well-formed key record (RFC 6376 3.6.1).
``dkim-not-revoked``: its ``p=`` is not empty.
``dkim-key-size``: an RSA key of at least 2048 bits (RFC 8301; verifiers need not go past 4096).
``dkim-key-matches``: the key bytes equal the key the key source holds for the selector, whatever
the spacing, tag order or chunking of the served text.

When the record is missing or malformed only ``dkim-present`` is reported; when it is revoked,
the size and the comparison are not (there is no key to measure or compare).
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra_agent.dns.client import Answer, DnsClient

from ..dkim import RecordFormatError, record_fingerprint, record_key
from ..dkim.keys import MAX_RSA_BITS, MIN_RSA_BITS, KeyAlgorithm
from .expected import DkimSubject, Expectations
from .results import CheckResult, Status


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


def _subject(subject: DkimSubject, answer: Answer, server: str) -> list[CheckResult]:
    fqdn = subject.fqdn

    def result(check: str, status: Status, reason: str) -> CheckResult:
        return CheckResult(check, fqdn, status, reason, server)

    if answer.unchecked:
        return [result('dkim-present', 'warn', "outside the deployment's zones: not checked (give --resolver)")]
    if not answer.ok:
        return [result('dkim-present', 'fail', f'cannot ask: {answer.error}')]
    if not answer.values:
        return [
            result(
                'dkim-present',
                'fail',
                f'no TXT record ({answer.rcode}): mail signed with {subject.selector} fails DKIM',
            )
        ]
    if len(answer.values) > 1:
        return [result('dkim-present', 'fail', f'{len(answer.values)} TXT records: verifiers need exactly one')]
    value = answer.values[0]
    try:
        algorithm, material = record_key(value)
    except RecordFormatError as error:
        return [result('dkim-present', 'fail', str(error))]
    via = f' (via CNAME {" -> ".join(answer.chain)})' if answer.chain else ''
    results = [result('dkim-present', 'pass', f'{algorithm.value} key record{via}')]
    if not material:
        results.append(result('dkim-not-revoked', 'fail', 'empty p=: the selector is revoked, signatures fail'))
        return results
    results.append(result('dkim-not-revoked', 'pass', 'p= holds a key'))
    status, reason = _size(algorithm, material)
    results.append(result('dkim-key-size', status, reason))
    local = subject.expected_key
    if isinstance(local, str):
        results.append(result('dkim-key-matches', 'warn', f"the key store's record is unusable: {local}"))
        return results
    if local is None:
        results.append(result('dkim-key-matches', 'warn', 'the key store has no key for this selector to compare'))
    elif local == (algorithm, material):
        results.append(result('dkim-key-matches', 'pass', f'the {algorithm.value} key in the key store'))
    else:
        results.append(
            result(
                'dkim-key-matches',
                'fail',
                f'serves {_describe(value)}; the key store has {_describe(subject.expected or "")}',
            )
        )
    return results


async def check(client: DnsClient, expected: Expectations) -> list[CheckResult]:
    answers = await client.ask_all([(subject.fqdn, 'TXT') for subject in expected.dkim])
    return [
        result
        for subject, answer in zip(expected.dkim, answers, strict=True)
        for result in _subject(subject, answer, client.server)
    ]
