"""Derived facts: what the spec implies, computed once and shared by checks and renderers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..model import Deployment, IspProfile
from .advice import MtaAdvice, advise_mta
from .capacity import StreamCapacity, stream_capacity, warmup_curve
from .ips import IpFact, plan_ips, pool_hosts
from .isps import EffectiveIsp, Limits, deployment_isps
from .plan import DEFAULT_ISP, Backoff, DeliveryPlan, IspPlan, PlanEntry, StreamPlan, delivery_plan
from .streams import CategoryFact, RetryFact, StreamFact, stream_facts


@dataclass(frozen=True)
class Facts:
    """Everything derived from a deployment; renderers read this, never the raw YAML."""

    as_of: dt.date
    ips: tuple[IpFact, ...]
    pool_hosts: dict[str, list[str]]
    streams: dict[str, StreamFact]
    isps: dict[str, IspProfile]
    mta: MtaAdvice
    host_mta: dict[str, str]
    """MTA of every host with the "mta" role (other hosts are not keys)."""
    capacity: dict[str, StreamCapacity]
    plan: DeliveryPlan
    """Per stream x sending IP x ISP: resolved limits, retries per bounce category, back-off rules."""

    def runs_postfix(self, host: str) -> bool:
        """Whether ``host`` runs Postfix: its injection listener offers STARTTLS and its queue reports message ages;
        a PowerMTA host (API without ages, no STARTTLS on injection) does neither."""
        return self.host_mta.get(host) == 'postfix'

    def queue_age_exported(self, stream: str) -> bool:
        """Whether a host of ``stream`` reports its oldest message's age (see ``runs_postfix``)."""
        hosts = self.streams[stream].hosts
        return not hosts or any(self.runs_postfix(host) for host in hosts)

    def ips_of_host(self, host: str) -> list[IpFact]:
        return self._by_host()[0].get(host, [])

    def streams_of_host(self, host: str) -> list[StreamFact]:
        return self._by_host()[1].get(host, [])

    def _by_host(self) -> tuple[dict[str, list[IpFact]], dict[str, list[StreamFact]]]:
        cached = self.__dict__.get('_host_index')
        if cached is None:
            ips: dict[str, list[IpFact]] = {}
            for ip in self.ips:
                if ip.host is not None:
                    ips.setdefault(ip.host, []).append(ip)
            streams: dict[str, list[StreamFact]] = {}
            for stream in self.streams.values():
                for host in stream.hosts:
                    streams.setdefault(host, []).append(stream)
            cached = (ips, streams)
            object.__setattr__(self, '_host_index', cached)
        return cached


def derive(deployment: Deployment, as_of: dt.date | None = None) -> Facts:
    """Compute the facts of a schema-valid deployment. ``as_of`` fixes "today" for warm-up estimates."""
    if isinstance(as_of, dt.datetime):  # a date too, but it neither subtracts from nor compares with one
        as_of = as_of.date()
    elif as_of is not None and not isinstance(as_of, dt.date):
        raise TypeError(f'as_of must be a datetime.date, not {type(as_of).__name__}')
    today = as_of or dt.date.today()
    ips = plan_ips(deployment)
    streams = stream_facts(deployment, ips)
    advice = advise_mta(deployment, {name: stream.kind for name, stream in streams.items()})
    curve = warmup_curve(deployment.warmup.curve, deployment.warmup.steps)
    return Facts(
        as_of=today,
        ips=tuple(ips),
        pool_hosts=pool_hosts(deployment),
        streams=streams,
        isps=deployment_isps(deployment),
        mta=advice,
        host_mta={name: host.mta or advice.chosen for name, host in deployment.hosts.items() if 'mta' in host.roles},
        capacity={name: stream_capacity(stream, today, curve) for name, stream in streams.items()},
        plan=delivery_plan(streams),
    )


__all__ = [
    'DEFAULT_ISP',
    'Backoff',
    'CategoryFact',
    'DeliveryPlan',
    'EffectiveIsp',
    'Facts',
    'IpFact',
    'IspPlan',
    'Limits',
    'MtaAdvice',
    'PlanEntry',
    'RetryFact',
    'StreamCapacity',
    'StreamFact',
    'StreamPlan',
    'derive',
]
