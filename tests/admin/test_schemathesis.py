"""Schemathesis against the OpenAPI document a real gateway serves, as a global and a team admin.

Every operation is fuzzed with data the schema allows (positive) and data it forbids
(negative). Asserted for every response: no server error, a status code and content type
the document declares, a body matching the declared schema, and — for allowed data — no
400: the schema is never looser than the server (its bounds, patterns and lengths are the
server's own). The two exceptions are rules JSON Schema cannot state, listed in
``_CROSS_FIELD``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.harness import running_gateway
from tokenomy.admin import create_admin_key
from tokenomy.admin.openapi import OPERATIONS

pytestmark = pytest.mark.timeout(3600 if os.environ.get("TOKENOMY_FUZZ_EXAMPLES") else 120)

# Examples per operation, per generation mode, per admin key: 12 operations x 2 x 2, the
# same every run. TOKENOMY_FUZZ_EXAMPLES=500 runs a deeper, random search locally.
DEEP = int(os.environ.get("TOKENOMY_FUZZ_EXAMPLES", "0"))
MAX_EXAMPLES = DEEP or 12


def _cross_field(case: schemathesis.Case) -> bool:
    """Allowed data the server may still refuse with 400, by rules no JSON Schema states."""
    body = case.body if isinstance(case.body, dict) else {}
    op = case.operation.definition.raw.get("operationId")
    # A global admin's key needs an org; a team admin's gets its own (who is asking).
    if op == "createKey" and not body.get("org"):
        return True
    # A budget cannot be transferred to itself (two fields compared).
    return op == "transferBudget" and body.get("from") == body.get("to")


def schema_not_looser_than_server(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    if _cross_field(case):
        return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    schema_not_looser_than_server,
]


def _fuzz_one(
    op: schemathesis.APIOperation,
    mode: GenerationMode,
    base: str,
    headers: dict[str, str],
    label: str,
    failures: list[str],
) -> None:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not DEEP,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        try:
            case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
        except (FailureGroup, AssertionError) as exc:  # note it and keep going
            if len(failures) < 20:
                failures.append(f"[{label}] {exc}"[:3000])

    run()


def _fuzz(base: str, secrets: dict[str, str]) -> list[str]:
    """Run every operation for every key and mode; return the failures (empty: all good)."""
    schema = schemathesis.openapi.from_url(f"{base}/admin/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    # Schemathesis leaves out the document's own URL.
    documented = {f"{op.method.upper()} {op.path}" for op in OPERATIONS if not op.public}
    assert {op.label for op in operations} == documented
    failures: list[str] = []
    for who, secret in secrets.items():
        headers = {"Authorization": f"Bearer {secret}"}
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                label = f"{who} admin, {mode.value} data, {op.label}"
                _fuzz_one(op, mode, base, headers, label, failures)
    return failures


async def test_admin_api_conforms_to_its_served_schema(tmp_path: Path) -> None:
    async with running_gateway(f"sqlite:///{tmp_path / 'ledger.db'}") as h:
        # The harness made an API key of (acme, research); globex has a research team too.
        h.store.create_key(org="globex", team="research", name="other org")
        _, root = create_admin_key(h.store, name="root")
        _, team = create_admin_key(h.store, org="acme", team="research", name="lead")
        failures = await asyncio.to_thread(_fuzz, h.url, {"global": root, "team": team})
        # Behind the gateway's catch-all route too, a known path with a wrong method is a
        # 405 naming the methods it takes, not a 404.
        async with aiohttp.ClientSession() as session:
            async with session.patch(f"{h.url}/admin/v1/budgets") as resp:
                assert (resp.status, resp.headers["Allow"]) == (405, "GET, HEAD, PUT")
            async with session.patch(f"{h.url}/admin/v1/nowhere") as resp:
                assert resp.status == 404
    assert not failures, "\n\n".join(failures)
