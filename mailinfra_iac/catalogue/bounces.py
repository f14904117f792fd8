"""Built-in bounce handling: per-category defaults and reply rules.

Suppression counts follow the Engaging Networks table and practitioner guidance
(hard bounces once, quota and no-answer three times, policy and spam never: those
call for an investigation, not a suppression).
"""

from __future__ import annotations

from ..model.bounce import CategoryPolicy, ReplyRule

PERMANENT = frozenset(
    {'bad-mailbox', 'bad-domain', 'inactive-mailbox', 'invalid-sender', 'content-related', 'virus-related'}
)
"""Categories where a retry cannot help: the message fails at once."""

REPUTATION = frozenset({'policy-related', 'spam-related'})
"""Categories that mean "slow down": retried on a longer schedule."""

SUPPRESS_AFTER: dict[str, int | str] = {
    'bad-mailbox': 1,
    'bad-domain': 1,
    'inactive-mailbox': 1,
    'quota-issues': 3,
    'no-answer-from-host': 3,
    'routing-errors': 4,
    'relaying-issues': 4,
    'policy-related': 'never',
    'spam-related': 'never',
    'content-related': 'never',
}
"""Bounces of a category after which the recipient is suppressed; others default to "never"."""

DEFAULT_CATEGORY = CategoryPolicy(retry=True, suppress_after='never')

REPLY_RULES: tuple[ReplyRule, ...] = (
    ReplyRule(
        pattern=r'^4\d\d[ -](?:4\.1\.1 )?.*(?i:user unknown|no such user|mailbox not found|does not exist)',
        category='bad-mailbox',
        action='bounce',
        description='a 4xx reply that really means "no such mailbox" is permanent',
    ),
    ReplyRule(
        pattern=r'^4\d\d[ -]4\.2\.2|(?i:mailbox full|over quota)',
        category='quota-issues',
        action='defer',
        description='mailbox full: a temporary condition',
    ),
    ReplyRule(
        pattern=r'^5\d\d[ -].*(?i:temporarily|try again later|rate limit)',
        category='policy-related',
        action='defer',
        description='a 5xx reply that says "temporarily" is a temporary block',
    ),
    ReplyRule(
        pattern=r'^4\d\d[ -]4\.7\.\d+',
        category='policy-related',
        action='defer',
        description='temporary policy or reputation block',
    ),
)
"""Built-in reply rules, applied after the deployment's and the stream's own."""
