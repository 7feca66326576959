"""`MaxRecords` and `Marker` on DescribeDBProxies and DescribeDBProxyTargets, as AWS pages them (moto answers every
record in one page): at most `MaxRecords` a page (default 100, allowed 20-100), and a `Marker` to ask for the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse

from sandbox.aws import errors

DEFAULT_RECORDS, MIN_RECORDS, MAX_RECORDS = 100, 20, 100
MARKER_PREFIX = "sandbox-page:"


def page_of(params: dict[str, Any], records: list[Any]) -> tuple[list[Any], str | None]:
    """The page of `records` the request asks for, and the marker of the next one (None on the last page)."""
    size = params.get("MaxRecords")
    size = DEFAULT_RECORDS if size in (None, "") else int(size)
    if not MIN_RECORDS <= size <= MAX_RECORDS:
        raise errors.invalid_parameter_value(f"MaxRecords must be between {MIN_RECORDS} and {MAX_RECORDS}, got {size}.")
    marker = params.get("Marker")
    start = 0
    if marker:
        text = str(marker)
        if not text.startswith(MARKER_PREFIX) or not text[len(MARKER_PREFIX) :].isdigit():
            raise errors.invalid_parameter_value(f"The marker {text!r} is not valid.")
        start = int(text[len(MARKER_PREFIX) :])
    end = start + size
    return records[start:end], (f"{MARKER_PREFIX}{end}" if end < len(records) else None)


def _paged(original: Callable[[RDSResponse], Any], key: str) -> Callable[[RDSResponse], Any]:
    def handler(self: RDSResponse) -> Any:
        answer = original(self)
        result = getattr(answer, "result", None)
        if not isinstance(result, dict) or key not in result:
            return answer
        records, marker = page_of(self.params, list(result[key]))
        return ActionResult({**result, key: records, "Marker": marker})

    handler.sandbox_paged = True  # type: ignore[attr-defined]
    # Keep the other sandbox patches' own "already installed" marks visible, so a reset installs nothing twice.
    handler.__dict__.update({k: v for k, v in vars(original).items() if k.startswith("sandbox_")})
    return handler


def install() -> None:
    """Idempotent: wrap moto's handlers once, after any other sandbox patch of them."""
    for name, key in (("describe_db_proxies", "DBProxies"), ("describe_db_proxy_targets", "Targets")):
        original = getattr(RDSResponse, name)
        if not getattr(original, "sandbox_paged", False):
            setattr(RDSResponse, name, _paged(original, key))
