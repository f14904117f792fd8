"""The published requirements for bulk senders (Gmail, Yahoo, Microsoft) the audit checks, and their sources.

Summarised in ``mta.md`` §6 of the project's reference; the pages themselves are archived in
azumakuniyuki/feb-2024-no-auth-no-entry (``google-81126-email-sender-guidelines.txt``,
``google-14229414-email-sender-guidelines-faq.txt``, ``microsoft-new-requirements-for-high-volume-senders.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass

BULK_PER_DAY = 5000
"""Gmail: 5,000 or more messages a day to personal Gmail accounts, counted per primary domain; Microsoft: more than
5,000 a day to Outlook.com. Yahoo gives no number."""

DAYS_PER_MONTH = 30
"""Daily volume = a stream's monthly volume / 30 (the spec has no daily figure; peaks are per hour)."""


@dataclass(frozen=True)
class Source:
    title: str
    url: str


SOURCES: dict[str, Source] = {
    'gmail': Source('Google, Email sender guidelines', 'https://support.google.com/a/answer/81126'),
    'gmail-faq': Source('Google, Email sender guidelines FAQ', 'https://support.google.com/a/answer/14229414'),
    'yahoo': Source('Yahoo Sender Hub, Sender best practices', 'https://senders.yahooinc.com/best-practices/'),
    'microsoft': Source(
        "Microsoft Defender for Office 365 blog, Strengthening Email Ecosystem: Outlook's New Requirements for "
        'High-Volume Senders (2 April 2025)',
        'https://techcommunity.microsoft.com/blog/microsoftdefenderforoffice365blog/'
        'strengthening-email-ecosystem-outlook%E2%80%99s-new-requirements-for%C2%A0high%E2%80%90volume-senders/4399730',
    ),
}


@dataclass(frozen=True)
class Requirement:
    title: str
    sources: tuple[str, ...]
    """Keys of :data:`SOURCES`."""
    fix: str
    """What to do when it fails (a finding may add the details)."""


REQUIREMENTS: dict[str, Requirement] = {
    'spf': Requirement(
        'SPF passes for the envelope sender (return-path) domain of each From domain',
        ('gmail', 'yahoo', 'microsoft'),
        'publish the rendered SPF record (`mailinfra records SPEC`, or apply the Terraform / zone files) at the '
        'return-path domain; `mailinfra dns check` shows the served record',
    ),
    'dkim': Requirement(
        'Mail is DKIM-signed, and the signing key of the From domain is published and usable',
        ('gmail', 'yahoo', 'microsoft'),
        "publish the signing selector's key record (`mailinfra records SPEC`) and keep the key store in step "
        '(`mailinfra dkim`); the MTA must sign every From domain',
    ),
    'dmarc': Requirement(
        'A DMARC record with a policy of p=none or stricter at each From domain',
        ('gmail', 'yahoo', 'microsoft'),
        'publish the rendered _dmarc record (sending_domains[].dmarc; p=none is enough to start, rua= to get reports)',
    ),
    'dmarc-alignment': Requirement(
        'The From domain is aligned with the DKIM signing domain or the SPF (return-path) domain',
        ('gmail', 'yahoo', 'microsoft'),
        "sign with a key of the From domain (the default), or put the return-path under the From domain's "
        'organisational domain (relaxed aspf) or make it the From domain (strict aspf)',
    ),
    'fcrdns': Requirement(
        'Each sending IP has a PTR whose name resolves back to the IP (forward-confirmed reverse DNS), not a '
        'generic one',
        ('gmail', 'yahoo'),
        "publish the PTR at the address owner (pools[].ips[].ptr; the provider's reverse zone) and the A record of "
        'the name',
    ),
    'tls': Requirement(
        'Outgoing SMTP uses TLS when the receiver offers it',
        ('gmail',),
        'keep smtp_tls_security_level at may (or stricter) in every Postfix instance, use-starttls yes in every '
        'PowerMTA queue; render again rather than editing the hosts',
    ),
    'one-click-unsubscribe': Requirement(
        'Marketing and subscribed mail carries one-click unsubscribe (List-Unsubscribe with '
        'List-Unsubscribe-Post, RFC 8058) and honours it within 2 days',
        ('gmail', 'gmail-faq', 'yahoo'),
        'configure feedback.unsubscribe (the RFC 8058 endpoint on the inbound hosts) and have the application add '
        'the List-Unsubscribe headers (mailinfra_iac.api, docs/feedback.md); transactional mail is exempt',
    ),
    'spam-rate': Requirement(
        'User-reported spam rate below 0.3 % (aim below 0.1 %)',
        ('gmail', 'gmail-faq', 'yahoo'),
        'measure it first: Gmail sends no complaint reports, its rate is only in Postmaster Tools '
        '(postmaster.google.com); Yahoo and Microsoft complaints come in through the feedback loops',
    ),
}
"""Every requirement the audit checks, in report order."""
