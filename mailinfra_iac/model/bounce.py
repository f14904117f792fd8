"""Bounce categories (PowerMTA's names), retries and suppression."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .base import Duration, Model

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


class CategoryPolicy(Model):
    """What to do with a recipient whose delivery failed in one category."""

    retry: bool | None = Field(None, description='Retry temporary failures of this category (false: give up).')
    retry_after: list[Duration] | None = Field(
        None, description='Retry schedule, e.g. ["5m", "15m", "1h"]; the last interval repeats.'
    )
    expire_after: Duration | None = Field(None, description='Give up after this long in the queue.')
    suppress_after: int | Literal['never'] | None = Field(
        None, description='Suppress the recipient after this many bounces of the category, or "never".'
    )


class ReplyRule(Model):
    """Reclassify a remote reply: temporary blocks deferred longer, 4xx "no such user" made permanent."""

    pattern: str = Field(description='Regular expression matched against "<code> <enhanced-code> <text>".')
    category: BounceCategory = Field(description='Bounce category assigned to a matching reply.')
    action: Literal['defer', 'bounce'] = Field(description='"defer" keeps retrying; "bounce" fails at once.')
    description: str = Field('', description='Why the rule exists.')

    @field_validator('pattern')
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f'invalid regular expression "{value}": {error}') from None
        return value


class RetrySchedule(Model):
    """Queue retry timing of one stream."""

    min_backoff: Duration | None = Field(None, description='Shortest wait before retrying a deferred message.')
    max_backoff: Duration | None = Field(None, description='Longest wait between two retries.')
    queue_lifetime: Duration | None = Field(None, description='Give up and bounce after this long.')


class BouncePolicy(Model):
    """Deployment-wide bounce handling; each stream may refine it."""

    categories: dict[BounceCategory, CategoryPolicy] = Field(
        default_factory=dict, description='Per-category policy replacing the built-in defaults.'
    )
    reply_rules: list[ReplyRule] = Field(
        default_factory=list, description='Extra reply rules, applied before the built-in ones.'
    )
