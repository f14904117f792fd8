"""IP warm-up: the curve warming IPs follow from their ``warmup_started`` day, and how the hosts apply it."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from .base import Model

WarmupCurve = Literal['conservative', 'custom']


class Warmup(Model):
    """How IPs with a ``warmup_started`` day are warmed up (docs/warmup.md).

    Each warming IP gets a daily cap from the curve, split across the ISPs by their share of the stream's
    recipients. On Postfix hosts the shaping service counts deliveries and suspends an IP's transport to an ISP
    when its cap is reached, until midnight in ``time_zone`` (PowerMTA does not enforce the caps yet). A day whose
    hard-bounce or complaint rate on the IP is above the stream's ``monitoring.rates`` warning lines does not
    advance the IP.
    """

    curve: WarmupCurve = Field(
        'conservative',
        description='"conservative": KumoMTA\'s published curve (50 a day on day 1, 3,000 on day 7, 25,000 on day '
        '14, 175,000 on day 30, then no cap); "custom": the points in "steps".',
    )
    steps: dict[int, int] | None = Field(
        None,
        description='Custom curve only: warm-up day (1 = the start day) -> messages per IP that day. Days between '
        'two points are interpolated geometrically; after the last point the IP has no cap.',
    )
    time_zone: str = Field(
        'UTC', description='IANA time zone (e.g. "Europe/Berlin") whose midnight resets the caps and starts a new day.'
    )
    on_threshold: Literal['hold', 'cut_back'] = Field(
        'hold',
        description='A day over the rate limits keeps the IP on its step ("hold") or moves it one step back '
        '("cut_back").',
    )
    min_sent: int = Field(50, ge=0, description='Deliveries a day needs on an IP before its rates are judged.')

    @field_validator('time_zone')
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown time zone "{value}", expected an IANA name such as "Europe/Berlin"') from None
        return value

    @field_validator('steps')
    @classmethod
    def _steps(cls, value: dict[int, int] | None) -> dict[int, int] | None:
        if value is None:
            return None
        if not value:
            raise ValueError('steps must list at least day 1')
        days = sorted(value)
        if days[0] != 1:
            raise ValueError(f'steps must start on day 1 (the start day), not day {days[0]}')
        low = [f'day {day}: {cap}' for day, cap in sorted(value.items()) if cap < 1]
        if low:
            raise ValueError(f'every daily cap must be at least 1 ({", ".join(low)})')
        return dict(sorted(value.items()))

    @model_validator(mode='after')
    def _curve_steps(self) -> Warmup:
        if self.curve == 'custom' and self.steps is None:
            raise ValueError('curve "custom" needs "steps" (day -> daily cap per IP)')
        if self.curve != 'custom' and self.steps is not None:
            raise ValueError(f'"steps" is only read with curve "custom" (curve is "{self.curve}")')
        return self
