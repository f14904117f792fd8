"""The deployment model: pydantic classes, one concept per module."""

from .base import Duration, Model, format_duration, parse_duration
from .bounce import BOUNCE_CATEGORIES, BouncePolicy, CategoryPolicy, ReplyRule, RetrySchedule
from .client import Client
from .deployment import Deployment
from .dns import Dns, Zone
from .domain import Dkim, Dmarc, SendingDomain, Spf, SpfInclude, Tracking
from .feedback import Feedback
from .inbound import Inbound, MtaSts, TlsRpt
from .infrastructure import Allocation, Host, Pool, SendingIp
from .isp import THROTTLE_RANGES, BackoffRule, IspLimits, IspOverride, IspProfile
from .monitoring import Alert, CustomZone, Dnsbl, Monitoring, QueueThresholds, Rates, RateThresholds, Smarthost
from .stream import STREAM_KINDS, Injection, Stream, Volume

__all__ = [
    'BOUNCE_CATEGORIES',
    'STREAM_KINDS',
    'THROTTLE_RANGES',
    'Alert',
    'Allocation',
    'BackoffRule',
    'BouncePolicy',
    'CategoryPolicy',
    'Client',
    'CustomZone',
    'Deployment',
    'Dkim',
    'Dmarc',
    'Dns',
    'Dnsbl',
    'Duration',
    'Feedback',
    'Host',
    'Inbound',
    'Injection',
    'IspLimits',
    'IspOverride',
    'IspProfile',
    'Model',
    'Monitoring',
    'MtaSts',
    'Pool',
    'QueueThresholds',
    'RateThresholds',
    'Rates',
    'ReplyRule',
    'RetrySchedule',
    'SendingDomain',
    'SendingIp',
    'Smarthost',
    'Spf',
    'SpfInclude',
    'Stream',
    'TlsRpt',
    'Tracking',
    'Volume',
    'Zone',
    'format_duration',
    'parse_duration',
]
