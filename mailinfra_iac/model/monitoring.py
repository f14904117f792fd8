"""Monitoring: DNSBLs, queues, alerting and postmaster programmes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Duration, Model

PostmasterProgramme = Literal['gmail_postmaster_tools', 'microsoft_snds', 'yahoo_cfl']
POSTMASTER_PROGRAMMES: tuple[PostmasterProgramme, ...] = ('gmail_postmaster_tools', 'microsoft_snds', 'yahoo_cfl')


class QueueThresholds(Model):
    """When a queue is worth an alert."""

    depth_warning: int = Field(5000, ge=1, description='Messages queued in one stream before a warning.')
    depth_critical: int = Field(50000, ge=1, description='Messages queued in one stream before a critical alert.')
    age_warning: Duration = Field(3600, description='Age of the oldest deferred message before a warning.')
    age_critical: Duration = Field(4 * 3600, description='Age of the oldest deferred message before a critical.')


class Alert(Model):
    """Where alerts go."""

    kind: Literal['email', 'webhook'] = Field(description='Delivery channel.')
    target: str = Field(min_length=1, description='E-mail address or webhook URL.')


class Monitoring(Model):
    """What is watched and who is told."""

    dnsbl_zones: list[str] | None = Field(
        None, description='DNSBL zones to query; default: the curated catalogue (free, live zones).'
    )
    dnsbl_interval: Duration = Field(900, description='How often every sending IP and domain is checked.')
    queue: QueueThresholds = Field(default_factory=QueueThresholds, description='Queue alert thresholds.')
    alerts: list[Alert] = Field(default_factory=list, description='Alert destinations.')
    postmaster_programmes: list[PostmasterProgramme] = Field(
        default_factory=lambda: list(POSTMASTER_PROGRAMMES),
        description='Provider programmes to register the IPs and domains with.',
    )
