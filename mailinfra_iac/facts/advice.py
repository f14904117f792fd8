"""Which MTA fits the volume, and why."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Deployment

POWERMTA_THRESHOLD_PER_DAY = 1_000_000
"""Above about 1M mails a day PowerMTA's per-domain throttling and accounting pay for its licence."""


@dataclass(frozen=True)
class MtaAdvice:
    chosen: str
    recommended: str
    daily_volume: int
    reasons: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return self.chosen == self.recommended


def advise_mta(deployment: Deployment, kinds: dict[str, str]) -> MtaAdvice:
    monthly = sum(stream.volume.monthly for stream in deployment.streams.values())
    daily = round(monthly / 30)
    reasons = []
    if daily > POWERMTA_THRESHOLD_PER_DAY:
        recommended = 'powermta'
        reasons.append(
            f"about {daily:,} mails/day is above {POWERMTA_THRESHOLD_PER_DAY:,}/day: PowerMTA's per-domain "
            'throttling, back-off patterns and accounting files pay for the licence at this volume'
        )
    else:
        recommended = 'postfix'
        reasons.append(
            f'about {daily:,} mails/day is below {POWERMTA_THRESHOLD_PER_DAY:,}/day: Postfix with one instance '
            'per stream and per-ISP transports handles it without a licence'
        )
    transactional = sorted(name for name, kind in kinds.items() if kind == 'transactional')
    if transactional:
        reasons.append(
            f'stream(s) {", ".join(transactional)} are transactional: dedicated IPs are worth it even at low '
            'volume, so password resets and receipts never share reputation with bulk mail'
        )
    chosen = recommended if deployment.mta == 'auto' else deployment.mta
    if deployment.mta != 'auto' and chosen != recommended:
        reasons.append(f'the spec asks for {chosen}; {recommended} would fit the volume')
    return MtaAdvice(chosen, recommended, daily, tuple(reasons))
