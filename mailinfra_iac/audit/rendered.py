"""What the rendered MTA configuration says about TLS and DKIM signing (the files ``mailinfra render`` writes).

The audit reads the renderer's output rather than the spec, so a template that stops offering TLS or signing a
domain is caught: Postfix ``smtp_tls_security_level`` in each stream instance (``main.cf`` and the ``-o``
overrides of ``master.cf``), PowerMTA ``use-starttls`` in each queue of each virtual MTA, and the OpenDKIM
``SigningTable``/``KeyTable`` or PowerMTA ``domain-key`` lines that say which domain signs a From domain's mail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

TLS_LEVELS = frozenset({'may', 'encrypt', 'dane', 'dane-only', 'fingerprint', 'verify', 'secure'})
"""Postfix client levels that use TLS when the receiver offers it (``none`` and the empty default do not)."""

_POSTFIX_MAIN = re.compile(r'^mta/(?P<host>[^/]+)/etc/(?P<instance>postfix-[^/]+)/main\.cf$')
_POWERMTA = re.compile(r'^mta/(?P<host>[^/]+)/(?:etc/)?pmta/config$')
_GATE_SOURCE = re.compile(r"^\s+# the gate's sessions of stream (?P<stream>\S+)$")
"""The comment roles/powermta writes in each ``<source 127.0.0.N>`` of the suppression gate."""
_OPENDKIM = re.compile(r'^mta/(?P<host>[^/]+)/etc/opendkim/SigningTable(?P<suffix>(?:\.[a-z0-9]+)?)$')
_PARAMETER = re.compile(r'^(?P<name>[a-z0-9_]+)\s*=\s*(?P<value>.*?)\s*$')
_OVERRIDE = re.compile(r'^\s+-o\s+\{?\s*smtp_tls_security_level\s*=\s*(?P<value>[^\s}]*)\s*\}?\s*$')


@dataclass(frozen=True)
class TlsFinding:
    subject: str
    """``<host> postfix-<stream>`` or ``<host> virtual-mta <name>``."""
    ok: bool
    reason: str


def _text(content: bytes | str) -> str:
    return content.decode('utf-8', 'replace') if isinstance(content, bytes) else content


def _postfix_level(main_cf: str) -> str | None:
    """The last ``smtp_tls_security_level`` of a main.cf (Postfix uses the last one); None when unset."""
    level = None
    for line in main_cf.splitlines():
        match = _PARAMETER.match(line)
        if match and match['name'] == 'smtp_tls_security_level':
            level = match['value']
    return level


def _master_overrides(master_cf: str) -> list[tuple[str, str]]:
    """(service, level) of every ``-o smtp_tls_security_level=...`` in a master.cf."""
    found = []
    service = ''
    for line in master_cf.splitlines():
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        if not line[0].isspace():
            service = line.split()[0]
            continue
        match = _OVERRIDE.match(line)
        if match:
            found.append((service, match['value']))
    return found


def postfix_tls(files: Mapping[str, bytes | str]) -> list[TlsFinding]:
    findings = []
    for path in sorted(files):
        match = _POSTFIX_MAIN.match(path)
        if not match:
            continue
        subject = f'{match["host"]} {match["instance"]}'
        level = _postfix_level(_text(files[path]))
        master = files.get(path.removesuffix('main.cf') + 'master.cf')
        weak = [
            f'{service} -o smtp_tls_security_level={value or "(empty)"}'
            for service, value in _master_overrides(_text(master) if master is not None else '')
            if value not in TLS_LEVELS
        ]
        if level is None or level not in TLS_LEVELS:
            shown = 'unset (Postfix default: no TLS)' if level is None else f'"{level or "(empty)"}"'
            findings.append(TlsFinding(subject, False, f'main.cf smtp_tls_security_level is {shown}'))
        elif weak:
            findings.append(TlsFinding(subject, False, 'master.cf turns TLS off: ' + ', '.join(weak)))
        else:
            findings.append(TlsFinding(subject, True, f'smtp_tls_security_level = {level}, no weaker -o override'))
    return findings


def powermta_tls(files: Mapping[str, bytes | str]) -> list[TlsFinding]:
    findings = []
    for path in sorted(files):
        match = _POWERMTA.match(path)
        if not match:
            continue
        for vmta, queues, without in _vmta_queues(_text(files[path])):
            subject = f'{match["host"]} virtual-mta {vmta}'
            if without:
                findings.append(
                    TlsFinding(
                        subject,
                        False,
                        f'no "use-starttls yes" in {len(without)} of {queues} queues: '
                        + ', '.join(without[:3])
                        + (' ...' if len(without) > 3 else ''),
                    )
                )
            else:
                findings.append(TlsFinding(subject, True, f'use-starttls yes in all {queues} queues'))
    return findings


def _vmta_queues(config: str) -> list[tuple[str, int, list[str]]]:
    """(virtual MTA, number of queues, queues without ``use-starttls yes``) of a PowerMTA config."""
    result: list[tuple[str, int, list[str]]] = []
    vmta: str | None = None
    queue: str | None = None
    starttls = False
    queues = 0
    without: list[str] = []
    for raw in config.splitlines():
        line = raw.split('#', 1)[0].strip()
        lowered = line.lower()
        if lowered.startswith('<virtual-mta ') and line.endswith('>'):
            vmta, queues, without = line[len('<virtual-mta ') : -1].strip(), 0, []
        elif lowered == '</virtual-mta>' and vmta is not None:
            result.append((vmta, queues, without))
            vmta = None
        elif vmta is not None and lowered.startswith('<domain ') and line.endswith('>'):
            queue, starttls = line[len('<domain ') : -1].strip(), False
        elif vmta is not None and lowered == '</domain>' and queue is not None:
            queues += 1
            if not starttls:
                without.append(queue)
            queue = None
        elif queue is not None:
            parts = lowered.split()
            if parts[:1] == ['use-starttls']:
                starttls = parts[1:] == ['yes']
    return result


def signing_domains(files: Mapping[str, bytes | str]) -> dict[str, set[str]]:
    """From domain -> the domains (d=) its mail is signed with, on any host."""
    found: dict[str, set[str]] = {}
    for path in sorted(files):
        opendkim = _OPENDKIM.match(path)
        if opendkim:
            key_table = files.get(path.replace('/SigningTable', '/KeyTable'))
            keys = {}
            for line in _text(key_table if key_table is not None else '').splitlines():
                parts = line.split()
                if len(parts) == 2 and not parts[0].startswith('#'):
                    keys[parts[0]] = parts[1].split(':', 1)[0].lower()
            for line in _text(files[path]).splitlines():
                parts = line.split()
                if len(parts) == 2 and not parts[0].startswith('#') and parts[1] in keys:
                    pattern = parts[0].lower()
                    from_domain = pattern.split('@', 1)[1] if '@' in pattern else pattern
                    found.setdefault(from_domain, set()).add(keys[parts[1]])
        elif _POWERMTA.match(path):
            for line in _text(files[path]).splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0].lower() == 'domain-key':
                    fields = parts[1].split(',')
                    if len(fields) == 3:
                        found.setdefault(fields[1].lower(), set()).add(fields[1].lower())
    return found


_POSTFIX_MASTER = re.compile(r'^mta/(?P<host>[^/]+)/etc/(?P<instance>postfix-[^/]+)/master\.cf$')
_STREAM_COMMENT = re.compile(r'^# Services of \S+ \(stream (?P<stream>[^)\s]+)\)')
_REFUSES = re.compile(r'smtpd_recipient_restrictions\s*=.*\b(?:check_recipient_access|check_policy_service)\b')


def suppression_enforced(files: Mapping[str, bytes | str]) -> dict[str, list[str]]:
    """Stream -> the hosts whose Postfix instance of it refuses suppressed recipients at injection (a
    ``check_recipient_access`` map or the policy service in ``smtpd_recipient_restrictions``, master.cf ``-o``),
    or whose PowerMTA sits behind the suppression gate (its ``<source 127.0.0.N>`` of the stream's gate sessions)."""
    found: dict[str, list[str]] = {}
    for path in sorted(files):
        powermta = _POWERMTA.match(path)
        if powermta:
            for line in _text(files[path]).splitlines():
                gated = _GATE_SOURCE.match(line)
                if gated:
                    found.setdefault(gated['stream'], []).append(powermta['host'])
            continue
        match = _POSTFIX_MASTER.match(path)
        if not match:
            continue
        text = _text(files[path])
        stream = match['instance'].removeprefix('postfix-')
        for line in text.splitlines():
            comment = _STREAM_COMMENT.match(line)
            if comment:
                stream = comment['stream']
                break
        if any(_REFUSES.search(line) for line in text.splitlines() if line[:1].isspace()):
            found.setdefault(stream, []).append(match['host'])
    return found
