"""Bounce categories (PowerMTA's names), retries and suppression."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from mailinfra_agent.feedback.classify import code_problem, enhanced_problem, pattern_problem

from .base import Duration, Model, duration_in_range

RETRY_RANGE = (1, 365 * 86400)
"""Accepted retry timing of a stream and of its bounce categories (seconds, inclusive); Postfix refuses times
beyond 2**31-1 seconds."""

_INLINE_FLAGS = re.compile(r'\(\?([a-zA-Z-]+)[:)]')
PYTHON_ONLY_FLAGS = 'auL'
"""Inline flags of Python's re that Postfix's PCRE2 refuses."""
_QUANTIFIER = re.compile(r'\{([0-9]*)(,[0-9]*)?\}')
PCRE_MAX_REPEAT = 65535
"""PCRE2's largest ``{n,m}`` bound (Python's is 4294967295)."""
_GROUP_NAME = re.compile(r'\(\?P?<([^>=!]*)>')
PCRE_MAX_NAME = 32
"""PCRE2's longest group name."""


def _group_problem(pattern: str, index: int) -> str | None:
    """Why the group opening at ``index`` is not one PCRE2 takes, or None."""
    flags = _INLINE_FLAGS.match(pattern, index)
    if flags and any(flag in PYTHON_ONLY_FLAGS for flag in flags.group(1)):
        return f'Postfix\'s PCRE has no inline flag "(?{flags.group(1)}" (a, u and L are Python\'s)'
    name = _GROUP_NAME.match(pattern, index)
    if name and len(name.group(1)) > PCRE_MAX_NAME:
        return f"Postfix's PCRE takes group names of at most {PCRE_MAX_NAME} characters"
    return None


def _quantifier_problem(pattern: str, index: int) -> str | None:
    """Why the ``{`` at ``index`` is a repeat PCRE2 refuses or reads as text, or None."""
    quantifier = _QUANTIFIER.match(pattern, index)
    if quantifier is None:
        return None
    low, high = quantifier.group(1), quantifier.group(2)
    if not low and high:
        return f'Postfix\'s PCRE reads "{quantifier.group()}" as text, Python as a repeat (write {{0,...}})'
    if any(int(bound) > PCRE_MAX_REPEAT for bound in (low, (high or '').lstrip(',')) if bound):
        return f"Postfix's PCRE repeats at most {PCRE_MAX_REPEAT} times in {{n,m}}"
    return None


def pcre_problem(pattern: str) -> str | None:
    """Why a Python regex cannot be a line of a Postfix pcre table (PCRE2 refuses it), or None."""
    if '\n' in pattern or '\r' in pattern:
        return 'a line break cannot be in a pcre table line'
    if '\0' in pattern:
        return "a NUL character ends a Postfix's PCRE table line (write \\x00)"
    index, class_start, verbose = 0, -1, False
    while index < len(pattern):
        char = pattern[index]
        if char == '\\':
            escape = pattern[index : index + 2]
            if escape[1:] in ('u', 'U', 'N'):
                return f"Postfix's PCRE has no {escape} escape (write the character itself)"
            index += 2
            continue
        if class_start >= 0:
            if char == ']' and index > class_start:
                class_start = -1
        elif char == '[':
            class_start = index + (2 if pattern.startswith('[^', index) else 1)
        elif char == '(':
            problem = _group_problem(pattern, index)
            if problem:
                return problem
            flags = _INLINE_FLAGS.match(pattern, index)
            verbose = verbose or bool(flags and 'x' in flags.group(1).partition('-')[0])
        elif char == '#' and verbose:
            # The rule is wrapped in a group: the comment would run to the line's end, past the wrapper's ")".
            return "under (?x), a # comment would swallow the rest of Postfix's PCRE table line (write \\#)"
        elif char == '{':
            problem = _quantifier_problem(pattern, index)
            if problem:
                return problem
        index += 1
    return None


BIDI_CONTROLS = frozenset('\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069')
"""Characters that reorder the text around them when it is shown (Unicode's bidirectional formatting characters)."""


def one_line(value: str) -> str:
    """Free text printed in generated comments: whitespace runs, line breaks included, become one space; control
    characters (NUL, ESC, ...) and bidirectional formatting characters are refused: in a configuration file they
    hide or rewrite what an operator sees on a terminal or in a review."""
    text = ' '.join(value.split())
    for char in text:
        if char in BIDI_CONTROLS or (char < ' ' or '\x7f' <= char <= '\x9f'):
            kind = 'a bidirectional formatting character' if char in BIDI_CONTROLS else 'a control character'
            raise ValueError(f'{kind} (U+{ord(char):04X}) cannot be in text printed into configuration comments')
    return text


OneLine = Annotated[str, AfterValidator(one_line)]

BounceCategory = Literal[
    'bad-configuration',
    'bad-connection',
    'bad-domain',
    'bad-mailbox',
    'content-related',
    'inactive-mailbox',
    'invalid-sender',
    'message-expired',
    'no-answer-from-host',
    'other',
    'policy-related',
    'protocol-errors',
    'quota-issues',
    'relaying-issues',
    'routing-errors',
    'spam-related',
    'virus-related',
]
BOUNCE_CATEGORIES: tuple[str, ...] = BounceCategory.__args__  # type: ignore[attr-defined]


def retry_bounded(value: int) -> int:
    """``value`` (seconds) if within ``RETRY_RANGE``, else ValueError."""
    return duration_in_range(value, RETRY_RANGE)


RetryDuration = Annotated[Duration, AfterValidator(retry_bounded)]
"""A retry time within ``RETRY_RANGE``: the ordinary schedule becomes PowerMTA's ``retry-after``."""


class CategoryPolicy(Model):
    """What to do with a recipient whose delivery failed in one category."""

    retry: bool | None = Field(None, description='Retry temporary failures of this category (false: give up).')
    retry_after: list[RetryDuration] | None = Field(
        None, description='Retry schedule, e.g. ["5m", "15m", "1h"]; the last interval repeats (each 1s to 365d).'
    )
    expire_after: RetryDuration | None = Field(None, description='Give up after this long in the queue (1s to 365d).')
    suppress_after: int | Literal['never'] | None = Field(
        None, description='Suppress the recipient after this many bounces of the category, or "never".'
    )


class ReplyRule(Model):
    """Reclassify a remote reply: temporary blocks deferred longer, 4xx "no such user" made permanent."""

    pattern: str = Field(description='Regular expression matched against "<code> <enhanced-code> <text>".')
    category: BounceCategory = Field(description='Bounce category assigned to a matching reply.')
    action: Literal['defer', 'bounce'] = Field(description='"defer" keeps retrying; "bounce" fails at once.')
    description: OneLine = Field('', description='Why the rule exists (one line; line breaks become spaces).')

    @field_validator('pattern')
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f'invalid regular expression "{value}": {error}') from None
        # Postfix applies the rule with PCRE (smtp_delivery_status_filter), which would ignore it.
        problem = pcre_problem(value)
        if problem:
            raise ValueError(f'regular expression "{value}": {problem}')
        return value


class RetrySchedule(Model):
    """Queue retry timing of one stream."""

    min_backoff: Duration | None = Field(None, description='Shortest wait before retrying a deferred message.')
    max_backoff: Duration | None = Field(None, description='Longest wait between two retries.')
    queue_lifetime: Duration | None = Field(None, description='Give up and bounce after this long.')

    @field_validator('min_backoff', 'max_backoff', 'queue_lifetime')
    @classmethod
    def _bounded(cls, value: int | None) -> int | None:
        return None if value is None else retry_bounded(value)


_RULE_ID = re.compile(r'^[a-z0-9][a-z0-9-]{0,62}$')


class ClassificationRule(Model):
    """A bounce-classification rule: every condition it sets must match; the first matching rule wins."""

    id: str = Field(description='Stable kebab-case id, shown by `mailinfra feedback classify` and in events.')
    category: BounceCategory = Field(description='Bounce category assigned to a matching reply.')
    codes: list[str] = Field(
        default_factory=list, description='SMTP reply codes, any of: "550", "55x", "5xx" (x: any digit).'
    )
    enhanced: list[str] = Field(
        default_factory=list, description='RFC 3463 status codes, any of: "5.1.1", "x.1.1", "5.7.x" (x: any number).'
    )
    regex: str | None = Field(
        None, description='Python regular expression searched (case-insensitive) in the reply text.'
    )
    isp: str | None = Field(
        None, description="Only for recipients of this ISP profile (the catalogue's or the spec's)."
    )
    description: str = Field('', description='Why the rule exists, or where its text comes from.')

    @field_validator('id')
    @classmethod
    def _id(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError(f'invalid rule id "{value}", expected kebab-case such as "gmail-no-such-user"')
        return value

    @field_validator('codes')
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            problem = code_problem(code)
            if problem:
                raise ValueError(f'{problem}, expected e.g. "550", "55x" or "5xx"')
        return value

    @field_validator('enhanced')
    @classmethod
    def _enhanced(cls, value: list[str]) -> list[str]:
        for code in value:
            problem = enhanced_problem(code)
            if problem:
                raise ValueError(f'{problem}, expected e.g. "5.1.1", "x.1.1" or "5.7.x"')
        return value

    @field_validator('regex')
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        problem = pattern_problem(value) if value is not None else None
        if problem:
            raise ValueError(f'{problem}, expected a short regular expression without nested quantifiers')
        return value

    @model_validator(mode='after')
    def _matches_something(self) -> ClassificationRule:
        if not self.codes and not self.enhanced and self.regex is None:
            raise ValueError(f'rule "{self.id}" matches nothing, expected at least one of codes, enhanced or regex')
        return self


class Classification(Model):
    """Bounce classification overrides: own rules first, then the catalogue's (mailinfra_iac/catalogue/bounce_rules)."""

    rules: list[ClassificationRule] = Field(
        default_factory=list, description="Rules tried before the catalogue (a stream's before the deployment's)."
    )
    disable: list[str] = Field(
        default_factory=list, description='Ids of catalogue rules to leave out (deployment-wide only).'
    )


class BouncePolicy(Model):
    """Deployment-wide bounce handling; each stream may refine it."""

    categories: dict[BounceCategory, CategoryPolicy] = Field(
        default_factory=dict, description='Per-category policy replacing the built-in defaults.'
    )
    reply_rules: list[ReplyRule] = Field(
        default_factory=list, description='Extra reply rules, applied before the built-in ones.'
    )
    classification: Classification = Field(
        default_factory=Classification, description='How bounce texts are classified into categories.'
    )
