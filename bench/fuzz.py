"""Fuzzing the API with schemathesis, from its own OpenAPI document.

Every operation, in both of schemathesis' generation modes (requests the document
says are valid, and ones it says are not), with one bearer token: the checks are that
no answer is a server error and that every answer is one the document describes --
its status, content type, headers and body schema -- and that invalid requests are
refused. Schema-valid requests may still be refused (a text search configuration
Postgres lacks, an index too large for the dimensions): tenantvec checks more than a
JSON Schema can say, so that one check is left out.

Used by the test suite (a small budget) and ``make bench-faults`` (a larger one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

__all__ = ["FuzzReport", "fuzz"]


@dataclass
class FuzzReport:
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def _tame(case: Any) -> None:
    """Keep what the fuzzer makes cheap: database tenants only, marked for clean-up."""
    if case.operation.label == "POST /v1/tenants" and isinstance(case.body, dict):
        if case.body.get("backend") in ("instance", "docker"):
            case.body["backend"] = "postgres"
        case.body["labels"] = {"made-by": "fuzz"}


def fuzz(
    url: str,
    token: str,
    *,
    examples: int,
    own_tenant: str | None = None,
    spare_tenant: str | None = None,
) -> FuzzReport:
    """Fuzz every operation of the API at ``url`` with ``token``.

    ``own_tenant``: the tenant a tenant key opens -- every ``{tenant_id}`` is set to it.
    ``spare_tenant``: a tenant the admin pass must leave alone (the key pass's).
    """
    report = FuzzReport()
    loaded = schemathesis.openapi.from_url(f"{url}/schema/openapi.json")
    budget = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    for result in loaded.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            pinned: dict[str, Any] = {}
            if own_tenant and "{tenant_id}" in operation.path:
                pinned = {"path_parameters": {"tenant_id": own_tenant}}

            @budget
            @given(case=operation.as_strategy(mode, **pinned))
            def run(case: Any) -> None:
                _tame(case)
                if spare_tenant and (case.path_parameters or {}).get("tenant_id") == spare_tenant:
                    return
                response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"})
                report.statuses[response.status_code] += 1
                if response.status_code == 413:
                    # A body over the server's size limit: refused before it is read, as
                    # it must be, with a problem -- a refusal schemathesis's list lacks.
                    # schemathesis 4 keeps each header as a list of its values.
                    values = next(
                        (v for k, v in response.headers.items() if k.lower() == "content-type"),
                        [""],
                    )
                    kind = values if isinstance(values, str) else (values or [""])[0]
                    assert kind.startswith("application/problem+json"), kind
                    return
                case.validate_response(response, excluded_checks=[checks.positive_data_acceptance])

            try:
                run()
            except Unsatisfiable:
                continue  # nothing the document forbids can be sent here (free strings)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 -- report them all
                lines = str(exc).strip().splitlines()[:12]
                report.failures.append(f"{operation.label} ({mode.value}): " + " | ".join(lines))
    return report
