"""Budget alerts: a log line and a JSON webhook POST, once per threshold per period."""

from __future__ import annotations

import logging
from decimal import Decimal

import aiohttp

from tokenomy.budgets.model import Budget, from_amount, show_amount
from tokenomy.budgets.periods import iso_utc

log = logging.getLogger("tokenomy.alerts")


class AlertSink:
    """Delivers alerts; the webhook is optional (log only without it)."""

    def __init__(self, webhook_url: str | None = None, timeout_s: float = 5.0) -> None:
        self.webhook_url = webhook_url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.sent: list[dict[str, object]] = []

    async def fire(
        self, budget: Budget, threshold: Decimal, spent: int, period_start: int, period_end: int
    ) -> None:
        payload: dict[str, object] = {
            "type": "budget.threshold",
            "budget_id": budget.id,
            "scope": budget.scope,
            "unit": budget.unit,
            "hard": budget.hard,
            "threshold": str(threshold),
            "limit": str(from_amount(budget.unit, budget.limit)),
            "spent": str(from_amount(budget.unit, spent)),
            "period": budget.period,
            "period_start": iso_utc(period_start),
            "period_end": iso_utc(period_end),
        }
        log.warning(
            "budget alert: %s reached %s%% (spent %s of %s)",
            budget.scope,
            threshold * 100,
            show_amount(budget.unit, spent),
            show_amount(budget.unit, budget.limit),
        )
        await self.deliver(payload)

    async def deliver(self, payload: dict[str, object]) -> None:
        """Keep ``payload`` in ``sent`` and POST it to the webhook, if there is one (a
        failure is logged: an alert never fails the call that raised it)."""
        self.sent.append(payload)
        if not self.webhook_url:
            return
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as session,
                session.post(self.webhook_url, json=payload) as resp,
            ):
                if resp.status >= 400:
                    log.error("alert webhook %s answered HTTP %d", self.webhook_url, resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.error("alert webhook %s failed: %s", self.webhook_url, exc)
