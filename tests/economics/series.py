"""Generated usage histories with known truth, loaded through ``tokenomy ledger import``.

Three shapes, as on the FinOps engineer's 60-day ledger: a team growing 3%/day, a flat
team with weekend dips, a team stepping up 2.5x on one day. Each day is split over a few
events; cost is exact ($2 per Mtok unless the row leaves it to the catalog).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.economics.conftest import TODAY, day_ms
from tokenomy.ledger import open_store
from tokenomy.ledger.importer import ImportResult, import_file

USD_PER_MTOK = Decimal(2)
EVENTS_PER_DAY = 3


def growth(base: float, rate: float) -> Callable[[int, date], float]:
    """``base x (1 + rate)^i``."""
    return lambda i, _day: base * (1 + rate) ** i


def flat_weekend_dips(base: float, weekend: float = 0.4) -> Callable[[int, date], float]:
    """``base`` on weekdays, ``base x weekend`` on Saturdays and Sundays."""
    return lambda _i, day: base * (weekend if day.weekday() >= 5 else 1.0)


def step(base: float, factor: float, at: int) -> Callable[[int, date], float]:
    """``base`` before day ``at``, ``base x factor`` from it on."""
    return lambda i, _day: base * (factor if i >= at else 1.0)


def rows(
    truth: Callable[[int, date], float],
    days: int,
    *,
    team: str,
    model: str = "gpt-4o",
    provider: str = "openai",
    noise: float = 0.03,
    seed: int = 1,
    end: date = TODAY - timedelta(days=1),
    input_share: float = 0.8,
    priced: bool = True,
) -> list[dict[str, Any]]:
    """Import rows: ``days`` days ending ``end``, ``truth(i, day)`` tokens a day (x noise)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(days):
        day = end - timedelta(days=days - 1 - i)
        tokens = truth(i, day) * math.exp(rng.gauss(0.0, noise))
        for k in range(EVENTS_PER_DAY):
            part = int(tokens / EVENTS_PER_DAY)
            inp = int(part * input_share)
            row: dict[str, Any] = {
                "id": f"{team}-{model}-{day.isoformat()}-{k}",
                "ts": day_ms(day, 8 + 4 * k)
                if k % 2
                else f"{day.isoformat()}T{8 + 4 * k:02d}:00:00Z",
                "org": "acme",
                "team": team,
                "user": "u1",
                "provider": provider,
                "model": model,
                "input_tokens": inp,
                "output_tokens": part - inp,
            }
            if priced:
                row["cost_usd"] = str(Decimal(part) / 1_000_000 * USD_PER_MTOK)
            out.append(row)
    return out


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def import_rows(url: str, path: Path, records: Iterable[dict[str, Any]]) -> ImportResult:
    """Write ``records`` as JSON lines and import them into the ledger at ``url``."""
    store = open_store(url)
    try:
        return import_file(store, write_jsonl(path, records))
    finally:
        store.close()
