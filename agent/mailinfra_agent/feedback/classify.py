"""Classify a remote reply (a DSN diagnostic or an MTA log text) into a PowerMTA bounce category.

The rules are plain data compiled on the controller (the catalogue ``mailinfra_iac/catalogue/bounce_rules/``
plus the spec's overrides) and shipped in the contract (``Contract.bounce_rules``). A rule matches on the
SMTP reply code, the RFC 3463 enhanced status code, a regular expression over the text and optionally the
recipient's ISP and the stream; every condition a rule sets must hold. The first matching rule wins. A text
that no rule matches falls back to its status code: the class and subject of the enhanced code (RFC 3463),
else the class of the reply code.

Regular expressions are checked when the rules are compiled (``pattern_problem``: no nested quantifiers, no
back-references, bounded length), and the text is cut to ``max_text`` characters before matching, so one
reply cannot make matching slow. Standard library only.

Speed: before a rule's regular expression runs, a literal prefilter tries the strings one of which every match must
contain (read from the parsed expression: :func:`required_literals`); on an ASCII text, a rule whose strings are all
absent cannot match and is skipped. The result is the same as running every expression. Which of a rule's code
patterns a code matches is remembered (a bounded cache): the same few codes come again and again.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    'FALLBACK_BY_SUBJECT',
    'HARD_CATEGORIES',
    'MAX_PATTERN',
    'MAX_TEXT',
    'REPUTATION_CATEGORIES',
    'Classification',
    'Classifier',
    'Rule',
    'code_matches',
    'outcome',
    'parse_codes',
    'pattern_problem',
    'required_literals',
]

MAX_TEXT = 4096
"""Characters of a reply that rules see; the rest is ignored (replies are rarely longer than 1 kB)."""
MAX_PATTERN = 500
"""Longest regular expression a rule may have."""

HARD_CATEGORIES = frozenset({'bad-mailbox', 'bad-domain', 'inactive-mailbox'})
"""Categories that are hard bounces when permanent (a 5xx reply or a 5.x.x status)."""
REPUTATION_CATEGORIES = frozenset({'policy-related', 'spam-related'})
"""Reputation events: counted and alerted on, never a reason to suppress the recipient."""

FALLBACK_BY_SUBJECT: dict[str, str] = {
    '0': 'other',
    '1': 'bad-mailbox',
    '2': 'other',  # X.2.0: "the mailbox exists" (RFC 3463); 5.2.12x are rate limits: never a hard bounce
    '3': 'bad-configuration',
    '4': 'routing-errors',
    '5': 'protocol-errors',
    '6': 'content-related',
    '7': 'policy-related',
}
"""RFC 3463 subject (the ``Y`` of ``X.Y.Z``) -> category of a reply that no rule matches."""

Outcome = Literal['delivered', 'hard', 'soft', 'policy']

_CODE = re.compile(r'(?<![\w.#-])([245]\d\d)(?=[ -]|$)')
_ENHANCED = re.compile(r'(?<![\w.])#?([245])\.(\d{1,3})\.(\d{1,3})(?![\w.])')
_CODE_PATTERN = re.compile(r'^[245x][0-9x]{2}$')
_ENHANCED_PATTERN = re.compile(r'^([245x])\.(\d{1,3}|x)\.(\d{1,3}|x)$')
_NESTED_QUANTIFIER = re.compile(r'\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)\s*(?:[+*]|\{\d*,?\d*\})')
_BACKREFERENCE = re.compile(r'\\[1-9]|\(\?P=')


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a safe rule regex, or None: it must compile, stay short and cannot backtrack badly."""
    if len(pattern) > MAX_PATTERN:
        return f'the regular expression is {len(pattern)} characters long, more than {MAX_PATTERN}'
    try:
        re.compile(pattern)
    except re.error as error:
        return f'invalid regular expression: {error}'
    if _NESTED_QUANTIFIER.search(pattern):
        return 'a quantified group contains a quantifier (e.g. "(a+)+"), which can take exponential time'
    if _BACKREFERENCE.search(pattern):
        return 'back-references are not allowed'
    return None


# re's own parser and its op codes (the public sre_parse is deprecated); no type stubs.
sre_parse: Any = importlib.import_module('re._parser')
sre_constants: Any = importlib.import_module('re._constants')

MIN_LITERAL = 3
"""Shortest literal run worth a prefilter on its own (a shorter one is used when nothing better is found)."""


def required_literals(pattern: str) -> frozenset[str] | None:
    """Lower-case ASCII strings one of which every match of ``pattern`` contains, read case-insensitively from an
    ASCII text; None when the expression does not tell (then it must simply be run)."""
    try:
        parsed = sre_parse.parse(pattern, re.IGNORECASE)
    except re.error:
        return None
    return _required(list(parsed))


def _required(items: list[Any]) -> frozenset[str] | None:
    """What a sequence of parsed items requires: its longest run of ASCII literals, else what one of its
    alternations or groups requires (each branch must require something)."""
    best, run = '', ''
    for op, value in items:
        if op is sre_constants.LITERAL and value < 128:
            run += chr(value)
            if len(run) > len(best):
                best = run
        else:
            run = ''
    if len(best) >= MIN_LITERAL:
        return frozenset({best.lower()})
    for op, value in items:
        found: frozenset[str] | None = None
        if op is sre_constants.BRANCH:
            branches = [_required(list(branch)) for branch in value[1]]
            if all(branch is not None for branch in branches):
                found = frozenset().union(*branches)  # type: ignore[arg-type]
        elif op is sre_constants.SUBPATTERN:
            found = _required(list(value[-1]))
        if found is not None and all(found):
            return found
    return frozenset({best.lower()}) if best else None


def code_problem(code: str) -> str | None:
    """Why ``code`` is not an SMTP reply code pattern (``550``, ``55x``, ``5xx``), or None."""
    return None if _CODE_PATTERN.match(code) else f'invalid reply code pattern "{code}"'


def enhanced_problem(code: str) -> str | None:
    """Why ``code`` is not an enhanced status pattern (``5.1.1``, ``x.1.1``, ``5.7.x``), or None."""
    return None if _ENHANCED_PATTERN.match(code) else f'invalid enhanced status code pattern "{code}"'


def code_matches(pattern: str, code: str) -> bool:
    """``x`` is any digit or number: ``5xx`` matches ``550``, ``x.1.x`` matches ``5.1.10``."""
    if '.' in pattern:
        return all(p in ('x', c) for p, c in zip(pattern.split('.'), code.split('.'), strict=True))
    return len(code) == 3 and all(p in ('x', c) for p, c in zip(pattern, code, strict=True))


@functools.lru_cache(maxsize=8192)
def _first_match(patterns: tuple[str, ...], code: str) -> str | None:
    """The first of ``patterns`` that ``code`` matches (:func:`code_matches`), or None; remembered, as the same few
    codes come again and again."""
    for pattern in patterns:
        if code_matches(pattern, code):
            return pattern
    return None


def parse_codes(text: str) -> tuple[str | None, str | None]:
    """The first SMTP reply code and the first enhanced status code in ``text`` (``#5.1.0`` reads as 5.1.0)."""
    code = _CODE.search(text)
    enhanced = _ENHANCED.search(text)
    return (code.group(1) if code else None, '.'.join(enhanced.groups()) if enhanced else None)


def outcome(category: str, permanent: bool, delivered: bool = False) -> Outcome:
    """What the reply means for the recipient: hard bounce, soft bounce or a reputation (policy) event."""
    if delivered:
        return 'delivered'
    if category in REPUTATION_CATEGORIES:
        return 'policy'
    return 'hard' if permanent and category in HARD_CATEGORIES else 'soft'


@dataclass(frozen=True)
class Rule:
    """One compiled rule; the conditions left empty (or None) are not checked."""

    id: str
    category: str
    codes: tuple[str, ...] = ()
    enhanced: tuple[str, ...] = ()
    regex: str | None = None
    isp: str | None = None
    stream: str | None = None
    origin: str = 'catalogue'
    description: str = ''
    compiled: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_data(cls, data: Any) -> Rule:
        """From a contract rule or a mapping with the same fields; raises ValueError on an unsafe rule."""
        get = data.get if isinstance(data, Mapping) else lambda name, default=None: getattr(data, name, default)
        rule_id = str(get('id'))
        regex = get('regex')
        problems = [
            *(code_problem(code) for code in get('codes', ()) or ()),
            *(enhanced_problem(code) for code in get('enhanced', ()) or ()),
            pattern_problem(regex) if regex is not None else None,
        ]
        found = [problem for problem in problems if problem]
        if found:
            raise ValueError(f'bounce rule "{rule_id}": ' + '; '.join(found))
        if regex is None and not get('codes') and not get('enhanced'):
            raise ValueError(f'bounce rule "{rule_id}": matches nothing (no codes, enhanced codes or regex)')
        return cls(
            id=rule_id,
            category=str(get('category')),
            codes=tuple(get('codes', ()) or ()),
            enhanced=tuple(get('enhanced', ()) or ()),
            regex=regex,
            isp=get('isp'),
            stream=get('stream'),
            origin=str(get('origin', 'catalogue') or 'catalogue'),
            description=str(get('description', '') or ''),
            compiled=re.compile(regex, re.IGNORECASE) if regex is not None else None,
        )

    def explain(
        self, code: str | None, enhanced: str | None, text: str, isp: str | None, stream: str | None
    ) -> dict[str, str] | None:
        """What each condition matched, or None when one fails."""
        why: dict[str, str] = {}
        if self.stream is not None:
            if stream != self.stream:
                return None
            why['stream'] = stream
        if self.isp is not None:
            if isp != self.isp:
                return None
            why['isp'] = isp
        if self.codes:
            hit = None if code is None else _first_match(self.codes, code)
            if hit is None:
                return None
            why['code'] = f'{code} matches {hit}'
        if self.enhanced:
            hit = None if enhanced is None else _first_match(self.enhanced, enhanced)
            if hit is None:
                return None
            why['enhanced'] = f'{enhanced} matches {hit}'
        if self.compiled is not None:
            found = self.compiled.search(text)
            if found is None:
                return None
            why['regex'] = f'"{found.group(0)}" matches /{self.regex}/'
        return why


@dataclass(frozen=True)
class Classification:
    """The category of one reply and why: the rule that matched, or the status-code fallback."""

    category: str
    outcome: Outcome
    permanent: bool
    code: str | None
    enhanced: str | None
    rule: str | None
    """The matching rule's id; None for the fallback."""
    origin: str
    """``catalogue`` or ``spec`` (the rule's), or ``fallback``."""
    matched: dict[str, str]
    """Condition -> what it matched (``code``, ``enhanced``, ``regex``, ``isp``, ``stream``); for the fallback,
    ``class`` or ``subject``."""
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {
            'category': self.category,
            'outcome': self.outcome,
            'permanent': self.permanent,
            'code': self.code,
            'enhanced': self.enhanced,
            'rule': self.rule,
            'origin': self.origin,
            'matched': dict(self.matched),
            'description': self.description,
        }


class Classifier:
    """First-match classification over compiled rules."""

    def __init__(self, rules: Iterable[Any], max_text: int = MAX_TEXT) -> None:
        self.rules = tuple(rule if isinstance(rule, Rule) else Rule.from_data(rule) for rule in rules)
        self.max_text = max_text
        # Per rule: strings one of which its regex needs in the text (None: no regex, or nothing to tell).
        self._needles = tuple(
            required_literals(rule.regex) if rule.regex is not None and rule.compiled is not None else None
            for rule in self.rules
        )

    def classify(
        self,
        text: str,
        *,
        status: str | None = None,
        code: str | None = None,
        isp: str | None = None,
        stream: str | None = None,
    ) -> Classification:
        """Classify a reply text; ``status`` (a DSN ``Status``) and ``code`` fill in what the text lacks."""
        text = ' '.join(text[: self.max_text].split())
        found_code, found_enhanced = parse_codes(text)
        code = found_code or code
        enhanced = found_enhanced or (status if status and enhanced_problem(status) is None else None)
        permanent = (enhanced or code or '4').startswith('5')
        delivered = (enhanced or code or '').startswith('2')
        lowered = text.lower() if text.isascii() else None  # case-insensitive = lower-case only for ASCII
        for rule, needles in zip(self.rules, self._needles, strict=True):
            if needles is not None and lowered is not None:
                for needle in needles:  # a loop, not any(): no generator per rule
                    if needle in lowered:
                        break
                else:
                    continue  # its regex cannot match
            why = rule.explain(code, enhanced, text, isp, stream)
            if why is not None:
                category = rule.category
                return Classification(
                    category,
                    outcome(category, permanent, delivered),
                    permanent,
                    code,
                    enhanced,
                    rule.id,
                    rule.origin,
                    why,
                    rule.description,
                )
        return self._fallback(code, enhanced, permanent, delivered)

    @staticmethod
    def _fallback(code: str | None, enhanced: str | None, permanent: bool, delivered: bool) -> Classification:
        if enhanced is not None:
            subject = enhanced.split('.')[1]
            category = FALLBACK_BY_SUBJECT.get(subject, 'other')
            matched = {'subject': f'{enhanced}: RFC 3463 class {enhanced[0]}, subject X.{subject}'}
        else:
            category = 'other'
            matched = {'class': f'reply code {code}: class {code[0]}xx' if code else 'no status code in the text'}
        description = 'no rule matched: the status code decides'
        return Classification(
            category,
            outcome(category, permanent, delivered),
            permanent,
            code,
            enhanced,
            None,
            'fallback',
            matched,
            description,
        )
