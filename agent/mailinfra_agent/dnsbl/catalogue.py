"""The blocklist catalogue: zones as data (``zones.toml`` beside this module), loaded into frozen records.

A zone is data only: a new zone is a table in ``zones.toml``, never code. The loader checks every entry
and reports every problem at once (:class:`CatalogueError`). Sections:

* ``listing``: blocklists whose answers can be listings (DNSBL, RHSBL, URIBL);
* ``allowlist``: allowlists (dnswl): their answers are trust levels, never listings;
* ``reputation``: reputation scores (Sender Score, Mailspike rep): reported as scores, never listings;
* ``key_only``: zones that answer only with a key (Spamhaus DQS, Abusix);
* ``retired``: dead zones, refused with a note and never queried;
* ``unsupported``: live zones this tool cannot query correctly (hashed names), with the reason.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal

ZoneKind = Literal['ip', 'domain']
Decoder = Literal['codes', 'bitmask', 'score']
Section = Literal['listing', 'allowlist', 'reputation', 'key_only']
Severity = Literal['warning', 'critical']
Terms = Literal['free', 'free-non-commercial', 'registered-resolver', 'dqs-key', 'key', 'free-low-volume']
KeyKind = Literal['dqs', 'abusix']

SECTIONS: tuple[Section, ...] = ('listing', 'allowlist', 'reputation', 'key_only')
TERMS: tuple[str, ...] = ('free', 'free-non-commercial', 'free-low-volume', 'registered-resolver', 'dqs-key', 'key')
_ZONE_NAME = re.compile(r'^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$')
_ERROR_ID = re.compile(r'^[a-z][a-z0-9_]{0,31}$')
_URL = re.compile(r'^https?://\S+$')
_LOOPBACK = ipaddress.IPv4Network('127.0.0.0/8')


class CatalogueError(Exception):
    """The catalogue data is wrong; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f'{source}: ' + '; '.join(problems))


@dataclass(frozen=True)
class ErrorCode:
    """An answer that is an error or a refusal, never a listing."""

    id: str
    """Short identifier (metric label), e.g. ``open_resolver``."""
    meaning: str


@dataclass(frozen=True)
class ScoreRange:
    """How a score zone encodes its value: an answer inside ``network`` whose last octet is the score."""

    network: str
    """e.g. ``127.0.4.0/24``; the score is the last octet."""
    minimum: int
    maximum: int


@dataclass(frozen=True)
class Zone:
    """One zone and how to read its answers."""

    zone: str
    kind: ZoneKind
    operator: str
    list_kind: str
    """What it lists, in words (``IP blocklist: spam sources``)."""
    section: Section
    decoder: Decoder
    codes: Mapping[str, str]
    """``codes``: answer address -> meaning; ``bitmask``: bit value (``'2'``) -> meaning; ``score``: optional
    meanings of single values (answer address -> meaning)."""
    errors: Mapping[str, ErrorCode]
    """Answer address (or, for ``bitmask``, bit value) -> error."""
    source: str
    """Where the codes are documented (URL); empty only for custom zones."""
    severity: Severity = 'warning'
    default: bool = False
    """Selected when the spec names no zones."""
    terms: str = 'free'
    terms_note: str = ''
    delisting_url: str | None = None
    test_point: str | None = None
    """Query prefix the zone always lists (``2.0.0.127``, ``test.surbl.org``); None: no documented test point."""
    test_answers: tuple[str, ...] = ()
    """Answers the test point must include (empty: any documented listing code)."""
    negative_point: str | None = None
    """Query prefix the zone must never list (default: ``1.0.0.127`` for IP zones, ``invalid`` for domain zones:
    RFC 5782 section 5). A listing there means the zone lists everything."""
    ipv6: bool = False
    """IP zones: whether IPv6 subjects are listed (queried as nibbles)."""
    host_names: bool = False
    """Domain zones: whether the operator lists host names below a registered domain (the DBL: ``news.brand.example``
    alone); then every name from a subject's full name down to its registered domain is asked, else only the
    registered domain (URIBL and SURBL ask for that)."""
    score: ScoreRange | None = None
    key: KeyKind | None = None
    """Key-only zones: the key they need."""
    key_zone: str | None = None
    """The zone queried with the key (``<query>.<key>.<key_zone>``); for ``listing`` zones, the DQS mirror used
    instead of the public one when a key is configured."""
    note: str = ''
    custom: bool = False
    codes_documented: bool = True
    """False: the source names the zone but not its codes (127.0.0.2 is assumed from RFC 5782 convention);
    such a zone is queryable but not counted."""

    @property
    def counted(self) -> bool:
        """A live listing zone whose codes have a cited source."""
        return self.section == 'listing' and bool(self.source) and self.codes_documented and not self.custom

    def to_dict(self) -> dict[str, Any]:
        return {
            'zone': self.zone,
            'kind': self.kind,
            'operator': self.operator,
            'list_kind': self.list_kind,
            'section': self.section,
            'decoder': self.decoder,
            'codes': dict(self.codes),
            'errors': {code: {'id': e.id, 'meaning': e.meaning} for code, e in self.errors.items()},
            'source': self.source,
            'severity': self.severity,
            'default': self.default,
            'terms': self.terms,
            'delisting_url': self.delisting_url,
            'test_point': self.test_point,
            'ipv6': self.ipv6,
            'host_names': self.host_names,
        }


@dataclass(frozen=True)
class Retired:
    """A zone that must never be queried."""

    zone: str
    note: str
    source: str


@dataclass(frozen=True)
class Catalogue:
    listing: tuple[Zone, ...]
    allowlists: tuple[Zone, ...]
    reputation: tuple[Zone, ...]
    key_only: tuple[Zone, ...]
    retired: tuple[Retired, ...]
    unsupported: tuple[Retired, ...]
    _index: Mapping[str, Zone] = field(default_factory=dict, repr=False, compare=False)

    @property
    def zones(self) -> tuple[Zone, ...]:
        """Every queryable zone, all sections."""
        return self.listing + self.allowlists + self.reputation + self.key_only

    def get(self, name: str) -> Zone | None:
        return self._index.get(zone_key(name))

    def default_zones(self) -> tuple[Zone, ...]:
        return tuple(zone for zone in self.zones if zone.default)

    def counted(self) -> tuple[Zone, ...]:
        """Live listing zones whose codes have a cited source (the ones the catalogue's size counts)."""
        return tuple(zone for zone in self.listing if zone.counted)

    def refusal(self, name: str) -> str | None:
        """Why a zone is not queried (retired or unsupported), or None."""
        key = zone_key(name)
        for entry in self.retired:
            wildcard = entry.zone.startswith('*.')
            if key == entry.zone.removeprefix('*.') or (wildcard and key.endswith(entry.zone[1:])):
                return f'{entry.zone} is retired: {entry.note} ({entry.source})'
        for entry in self.unsupported:
            if key == entry.zone:
                return f'{entry.zone} is not supported: {entry.note}'
        return None


_ZONE_KEYS = {
    'zone', 'kind', 'operator', 'list_kind', 'decoder', 'codes', 'errors', 'error_sets', 'source', 'severity',
    'default', 'terms', 'terms_note', 'delisting_url', 'test_point', 'test_answers', 'ipv6', 'score', 'key',
    'key_zone', 'note', 'negative_point', 'codes_documented', 'host_names',
}  # fmt: skip
_SECTION_TABLES = {'listing': 'listing', 'allowlist': 'allowlist', 'reputation': 'reputation', 'key_only': 'key_only'}


def zone_key(name: str) -> str:
    """A zone name as zones compare: any letter case, with or without the root's trailing dot."""
    return name.strip().lower().rstrip('.')


def closest_first(name: str, names: Iterable[str]) -> list[str]:
    """``names`` for an "unknown zone" message: those close to ``name`` first (closest first), then the rest sorted."""
    known = sorted(set(names))
    close = difflib.get_close_matches(zone_key(name), known, n=3)
    return close + [other for other in known if other not in close]


def validate_zone_name(name: object) -> str | None:
    """A problem with a zone name, or None."""
    if not isinstance(name, str) or not _ZONE_NAME.match(name):
        return f'invalid zone name {name!r} (lower-case DNS name expected)'
    return None


def _address(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None


def _network_problems(code: str, where: str) -> list[str]:
    try:
        inside = ipaddress.IPv4Network(code).subnet_of(_LOOPBACK)
    except ValueError:
        return [f'{where}.errors: {code!r} is not an IPv4 network']
    return [] if inside else [f'{where}.errors: {code} is outside 127.0.0.0/8']


def check_codes(decoder: str, codes: Mapping[str, str], errors: Mapping[str, Any], where: str) -> list[str]:
    """Problems with a zone's codes (shared by the catalogue and custom zones)."""
    problems: list[str] = []
    for label, table in (('codes', codes), ('errors', errors)):
        for code in table:
            if label == 'errors' and '/' in code:
                problems.extend(_network_problems(code, where))
                continue
            if decoder == 'bitmask' and not (label == 'errors' and '.' in code):
                if not (code.isascii() and code.isdigit()) or int(code) not in (1, 2, 4, 8, 16, 32, 64, 128):
                    problems.append(f'{where}.{label}: {code!r} is not a bit value (1, 2, 4 ... 128)')
            else:
                address = _address(code)
                if address is None:
                    problems.append(f'{where}.{label}: {code!r} is not an IPv4 address')
                elif label == 'codes' and address not in _LOOPBACK:
                    problems.append(f'{where}.codes: {code} is outside 127.0.0.0/8 and can never be a listing')
                elif label == 'codes' and code == '127.0.0.1':
                    problems.append(f'{where}.codes: 127.0.0.1 is never a listing (RFC 5782 section 5)')
    if decoder == 'bitmask' and '1' in codes:
        problems.append(f'{where}.codes: bit 1 (127.0.0.1) is never a listing')
    for code in set(codes) & set(errors):
        problems.append(f'{where}: {code} is both a listing code and an error code')
    if decoder == 'codes' and not codes:
        problems.append(f'{where}: a "codes" zone needs at least one listing code')
    if decoder == 'bitmask' and not codes:
        problems.append(f'{where}: a "bitmask" zone needs at least one listing bit')
    return problems


def _check_fields(raw: dict[str, Any], where: str, problems: list[str]) -> None:
    """Required text, names, enumerations and URLs of one zone table."""
    unknown = sorted(set(raw) - _ZONE_KEYS)
    if unknown:
        problems.append(f'{where}: unknown keys {", ".join(unknown)}')
    if (problem := validate_zone_name(raw.get('zone'))) is not None:
        problems.append(f'{where}: {problem}')
    for key in ('operator', 'list_kind', 'source'):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            problems.append(f'{where}: "{key}" is required (non-empty text)')
    for key in ('source', 'delisting_url'):
        value = raw.get(key)
        if value and (not isinstance(value, str) or not _URL.match(value)):
            problems.append(f'{where}: {key.replace("_url", " URL")} {value!r} is not an http(s) URL')
    choices: tuple[tuple[str, Any, tuple[str, ...]], ...] = (
        ('kind', None, ('ip', 'domain')),
        ('decoder', None, ('codes', 'bitmask', 'score')),
        ('severity', 'warning', ('warning', 'critical')),
        ('terms', 'free', TERMS),
    )
    for key, default, allowed in choices:
        value = raw.get(key, default)
        if value not in allowed:
            expected = ', '.join(f'"{option}"' for option in allowed[:-1]) + f' or "{allowed[-1]}"'
            problems.append(f'{where}: {key} must be {expected}, not {value!r}')
    for key, example in (('test_point', '2.0.0.127'), ('negative_point', '1.0.0.127')):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value or ' ' in value):
            problems.append(f'{where}: {key} must be a query prefix such as "{example}"')
    if raw.get('key_zone') is not None and (problem := validate_zone_name(raw['key_zone'])) is not None:
        problems.append(f'{where}.key_zone: {problem}')


def _zone_errors(
    raw: dict[str, Any], where: str, error_sets: Mapping[str, Mapping[str, ErrorCode]], problems: list[str]
) -> dict[str, ErrorCode]:
    errors: dict[str, ErrorCode] = {}
    for set_name in raw.get('error_sets', []):
        if set_name not in error_sets:
            problems.append(f'{where}: unknown error set {set_name!r}')
        else:
            errors.update(error_sets[set_name])
    raw_errors = raw.get('errors', {})
    if not isinstance(raw_errors, dict):
        problems.append(f'{where}: errors must be a table of code = {{id, meaning}}')
        return errors
    for code, value in raw_errors.items():
        parsed = _parse_error(value, f'{where}.errors.{code}', problems)
        if parsed is not None:
            errors[code] = parsed
    return errors


def _check_section(
    raw: dict[str, Any], section: Section, codes: Mapping[str, str], where: str, problems: list[str]
) -> None:
    """The rules that tie decoders, keys and test answers to the section."""
    decoder, key = raw.get('decoder'), raw.get('key')
    if decoder != 'score' and 'score' in raw:
        problems.append(f'{where}: "score" only applies to the score decoder')
    if section == 'listing' and decoder == 'score':
        problems.append(f'{where}: a score zone is reported in the reputation section, never as listings')
    if section == 'reputation' and decoder != 'score':
        problems.append(f'{where}: reputation zones use the score decoder')
    if section == 'key_only' and key not in ('dqs', 'abusix'):
        problems.append(f'{where}: a key-only zone needs key = "dqs" or "abusix"')
    if section != 'key_only' and key is not None:
        problems.append(f'{where}: "key" only applies to key-only zones (use key_zone for a DQS mirror)')
    if section == 'key_only' and key == 'dqs' and raw.get('key_zone') is None:
        problems.append(f'{where}: a DQS zone needs key_zone')
    for answer in raw.get('test_answers', ()):
        if answer not in codes and decoder != 'bitmask':
            problems.append(f'{where}: test answer {answer} is not one of the listing codes')
    if raw.get('ipv6') and raw.get('kind') != 'ip':
        problems.append(f'{where}: ipv6 only applies to IP zones')
    if 'host_names' in raw and (not isinstance(raw['host_names'], bool) or raw.get('kind') != 'domain'):
        problems.append(f'{where}: host_names is true or false, and only for domain zones')


def _parse_zone(
    raw: Any, section: Section, where: str, error_sets: Mapping[str, Mapping[str, ErrorCode]], problems: list[str]
) -> Zone | None:
    if not isinstance(raw, dict):
        problems.append(f'{where}: expected a table')
        return None
    start = len(problems)
    where = f'{where} ({raw.get("zone")})'
    _check_fields(raw, where, problems)
    decoder = raw.get('decoder')
    codes = raw.get('codes', {})
    if not isinstance(codes, dict) or not all(isinstance(v, str) and v for v in codes.values()):
        problems.append(f'{where}: codes must be a table of code = "meaning"')
        codes = {}
    errors = _zone_errors(raw, where, error_sets, problems)
    score = None
    if decoder == 'score':
        problems.extend(check_codes('score', {}, errors, where))
        score = _parse_score(raw.get('score'), where, problems)
        problems.extend(f'{where}.codes: {code!r} is not an IPv4 address' for code in codes if _address(code) is None)
    elif decoder in ('codes', 'bitmask'):
        problems.extend(check_codes(decoder, codes, errors, where))
    _check_section(raw, section, codes, where, problems)
    if len(problems) > start:
        return None
    return Zone(
        zone=raw['zone'],
        kind=raw['kind'],
        operator=raw['operator'],
        list_kind=raw['list_kind'],
        section=section,
        decoder=raw['decoder'],
        codes=MappingProxyType(dict(codes)),
        errors=MappingProxyType(errors),
        source=raw['source'],
        severity=raw.get('severity', 'warning'),
        default=bool(raw.get('default', False)),
        terms=raw.get('terms', 'free'),
        terms_note=raw.get('terms_note', ''),
        delisting_url=raw.get('delisting_url'),
        test_point=raw.get('test_point'),
        test_answers=tuple(raw.get('test_answers', ())),
        negative_point=raw.get('negative_point'),
        ipv6=bool(raw.get('ipv6', False)),
        host_names=raw.get('host_names', False),
        score=score,
        key=raw.get('key'),
        key_zone=raw.get('key_zone'),
        note=raw.get('note', ''),
        codes_documented=bool(raw.get('codes_documented', True)),
    )


def _parse_error(value: Any, where: str, problems: list[str]) -> ErrorCode | None:
    if not isinstance(value, dict) or set(value) != {'id', 'meaning'}:
        problems.append(f'{where}: expected {{ id = "...", meaning = "..." }}')
        return None
    if not isinstance(value['id'], str) or not _ERROR_ID.match(value['id']):
        problems.append(f'{where}: error id {value["id"]!r} must be a short snake_case identifier')
        return None
    if not isinstance(value['meaning'], str) or not value['meaning']:
        problems.append(f'{where}: meaning is required')
        return None
    return ErrorCode(value['id'], value['meaning'])


def _parse_score(raw: Any, where: str, problems: list[str]) -> ScoreRange | None:
    if not isinstance(raw, dict) or set(raw) != {'network', 'min', 'max'}:
        problems.append(f'{where}: a score zone needs score = {{ network = "127.0.4.0/24", min = 0, max = 100 }}')
        return None
    try:
        network = ipaddress.IPv4Network(raw['network'])
    except (ValueError, TypeError):
        problems.append(f'{where}: score network {raw["network"]!r} is not an IPv4 network')
        return None
    if not network.subnet_of(_LOOPBACK):
        problems.append(f'{where}: score network {network} is outside 127.0.0.0/8')
    low, high = raw['min'], raw['max']
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= 255):
        problems.append(f'{where}: score min/max must be integers with 0 <= min <= max <= 255')
        return None
    return ScoreRange(str(network), low, high)


def _parse_retired(raw: Any, where: str, problems: list[str]) -> Retired | None:
    if not isinstance(raw, dict) or set(raw) != {'zone', 'note', 'source'}:
        problems.append(f'{where}: expected zone, note and source')
        return None
    zone = raw['zone']
    if not isinstance(zone, str) or validate_zone_name(zone.removeprefix('*.')) is not None:
        problems.append(f'{where}: invalid zone name {zone!r}')
        return None
    if not isinstance(raw['source'], str) or not _URL.match(raw['source']):
        problems.append(f'{where} ({zone}): source must be an http(s) URL')
        return None
    return Retired(zone, str(raw['note']), raw['source'])


def parse_catalogue(data: Mapping[str, Any], source: str = '<catalogue>') -> Catalogue:
    """Build and check a catalogue from parsed TOML; raises :class:`CatalogueError` with every problem."""
    problems: list[str] = []
    known = {'error_sets', 'retired', 'unsupported', *_SECTION_TABLES}
    for key in sorted(set(data) - known):
        problems.append(f'unknown top-level key {key!r}')
    error_sets: dict[str, dict[str, ErrorCode]] = {}
    for set_name, table in data.get('error_sets', {}).items():
        error_sets[set_name] = {}
        for code, value in table.items():
            parsed = _parse_error(value, f'error_sets.{set_name}.{code}', problems)
            if parsed is not None:
                error_sets[set_name][code] = parsed
    sections: dict[str, list[Zone]] = {}
    for section, table in _SECTION_TABLES.items():
        sections[section] = []
        for number, raw in enumerate(data.get(table, [])):
            zone = _parse_zone(raw, section, f'{table}[{number}]', error_sets, problems)  # type: ignore[arg-type]
            if zone is not None:
                sections[section].append(zone)
    retired = [_parse_retired(raw, f'retired[{i}]', problems) for i, raw in enumerate(data.get('retired', []))]
    unsupported = [
        _parse_retired(raw, f'unsupported[{i}]', problems) for i, raw in enumerate(data.get('unsupported', []))
    ]
    index: dict[str, Zone] = {}
    for zone in (z for zones in sections.values() for z in zones):
        if zone.zone in index:
            problems.append(f'{zone.zone}: listed twice')
        index[zone.zone] = zone
    catalogue = Catalogue(
        listing=tuple(sections['listing']),
        allowlists=tuple(sections['allowlist']),
        reputation=tuple(sections['reputation']),
        key_only=tuple(sections['key_only']),
        retired=tuple(entry for entry in retired if entry is not None),
        unsupported=tuple(entry for entry in unsupported if entry is not None),
        _index=MappingProxyType(index),
    )
    for name in index:
        if (refusal := catalogue.refusal(name)) is not None:
            problems.append(f'{name}: is queryable but {refusal}')
    if problems:
        raise CatalogueError(source, problems)
    return catalogue


@cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the agent (``zones.toml``), checked; cached."""
    path = resources.files(__package__).joinpath('zones.toml')
    try:
        data = tomllib.loads(path.read_text(encoding='utf-8'))
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(str(path), [f'not valid TOML: {error}']) from None
    return parse_catalogue(data, str(path))


def custom_zone(
    *,
    zone: str,
    kind: ZoneKind,
    operator: str,
    decoder: Decoder,
    codes: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    severity: Severity = 'warning',
    test_point: str | None = None,
    delisting_url: str | None = None,
    list_kind: str = '',
    section: Section = 'listing',
    source: str = '',
    ipv6: bool = False,
    score: ScoreRange | None = None,
    host_names: bool = False,
) -> Zone:
    """A zone from outside the catalogue (the spec's custom zones, the contract); raises ValueError when wrong.

    Error meanings become error ids ``custom_<n>`` unless a meaning starts with ``id: ``.
    """
    problems = [p for p in [validate_zone_name(zone)] if p is not None]
    parsed_errors: dict[str, ErrorCode] = {}
    for number, (code, meaning) in enumerate(sorted((errors or {}).items()), start=1):
        ident, sep, rest = meaning.partition(': ')
        if sep and _ERROR_ID.match(ident):
            parsed_errors[code] = ErrorCode(ident, rest)
        else:
            parsed_errors[code] = ErrorCode(f'custom_{number}', meaning)
    if decoder in ('codes', 'bitmask'):
        problems += check_codes(decoder, codes, parsed_errors, zone)
    elif score is None:
        problems.append(f'{zone}: a score zone needs its score range')
    if host_names and kind != 'domain':
        problems.append(f'{zone}: host_names only applies to domain zones')
    if ipv6 and kind != 'ip':
        problems.append(f'{zone}: ipv6 only applies to IP zones')
    if problems:
        raise ValueError('; '.join(problems))
    return Zone(
        zone=zone,
        kind=kind,
        operator=operator,
        list_kind=list_kind or ('custom IP list' if kind == 'ip' else 'custom domain list'),
        section=section,
        decoder=decoder,
        codes=MappingProxyType(dict(codes)),
        errors=MappingProxyType(parsed_errors),
        source=source,
        severity=severity,
        test_point=test_point,
        delisting_url=delisting_url,
        ipv6=ipv6,
        host_names=host_names,
        score=score,
        custom=True,
    )
