"""The root of a spec: one client's sending infrastructure."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Model, Slug
from .bounce import BouncePolicy
from .client import Client
from .dns import Dns
from .domain import SendingDomain
from .feedback import Feedback
from .inbound import Inbound
from .infrastructure import Host, Pool
from .isp import IspOverride
from .monitoring import Monitoring
from .stream import Stream
from .warmup import Warmup


class Deployment(Model):
    """One client deployment, as written in the YAML spec."""

    version: Literal[1] = Field(description='Spec format version.')
    client: Client = Field(description='Who owns the deployment.')
    mta: Literal['postfix', 'powermta', 'auto'] = Field(
        'auto', description='MTA to deploy; "auto" chooses by volume (PowerMTA above about 1M mails/day).'
    )
    dns: Dns = Field(description='Zones and their providers.')
    hosts: dict[Slug, Host] = Field(min_length=1, description='Machines (MTAs, monitoring, database, DNS), by name.')
    pools: dict[Slug, Pool] = Field(min_length=1, description='IP pools, by name.')
    streams: dict[Slug, Stream] = Field(min_length=1, description='Mail streams, by name.')
    sending_domains: list[SendingDomain] = Field(min_length=1, description='From domains.')
    inbound: Inbound = Field(default_factory=Inbound, description='Bounce and feedback-loop reception.')
    isp_profiles: dict[Slug, IspOverride] = Field(
        default_factory=dict, description='Changes to the built-in ISP catalogue, or new providers.'
    )
    bounce_policy: BouncePolicy = Field(default_factory=BouncePolicy, description='Bounce handling.')
    monitoring: Monitoring = Field(default_factory=Monitoring, description='Monitoring and alerting.')
    feedback: Feedback = Field(default_factory=Feedback, description='Bounce, complaint and unsubscribe processing.')
    warmup: Warmup = Field(default_factory=Warmup, description='How IPs with a warmup_started day are warmed up.')
