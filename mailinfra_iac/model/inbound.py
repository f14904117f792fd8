"""Receiving side: the MX for bounces and feedback loops, MTA-STS and TLS-RPT."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Duration, Email, Model, Slug


class MtaSts(Model):
    """MTA-STS policy published for the receiving domains (RFC 8461)."""

    mode: Literal['enforce', 'testing', 'none'] = Field('testing', description='Policy mode.')
    max_age: Duration = Field(7 * 86400, description='Policy max_age.')


class TlsRpt(Model):
    """SMTP TLS reporting (RFC 8460)."""

    rua: list[Email] = Field(default_factory=list, description='Report addresses; default the postmaster.')


class Inbound(Model):
    """Hosts that receive bounces (return-path domains) and feedback-loop reports."""

    hosts: list[Slug] = Field(
        default_factory=list, description='Hosts that act as MX for the return-path domains; default all "mta" hosts.'
    )
    fbl_address: Email | None = Field(
        None,
        description='Address feedback-loop (ARF) reports are registered with; default fbl@<return-path>. At another '
        'domain the bounce MX takes this address only (its MX is published inside the managed zones).',
    )
    mta_sts: MtaSts = Field(default_factory=MtaSts, description='MTA-STS policy.')
    tls_rpt: TlsRpt = Field(default_factory=TlsRpt, description='TLS-RPT reporting.')
