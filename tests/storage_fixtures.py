"""Helpers for the storage tests. Module-level functions so that spawned processes can import them."""

from __future__ import annotations

from typing import Any

from storage import RunRecord, Store, open_store

T0 = 1_700_000_000.0


def make_run(store: Store, **overrides: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "kind": "upgrade",
        "database": "orders-pg",
        "params": {"target_engine_version": "16.4"},
        "requester": "U_REQUESTER",
        "now": T0,
    }
    fields.update(overrides)
    return store.runs.create(**fields)


def decide_each(path: str, request_ids: list[str], user: str, start: Any) -> list[str]:
    """Open a private connection, wait for the start signal, then try to approve every request in order.

    Returns the ids this caller won.
    """
    store = open_store(path)
    try:
        start.wait(timeout=10)
        return [
            request_id
            for request_id in request_ids
            if store.approvals.decide(request_id, user=user, decision="approved", now=T0)
        ]
    finally:
        store.close()


def claim_each(path: str, run_ids: list[str], owner: str, start: Any) -> list[str]:
    """Like decide_each, for leases: returns the run ids whose lease this owner obtained."""
    store = open_store(path)
    try:
        start.wait(timeout=10)
        return [run_id for run_id in run_ids if store.leases.claim(run_id, owner, ttl=60, now=T0)]
    finally:
        store.close()


def report_to(queue: Any, fn: Any, *args: Any) -> None:
    """Process target: run `fn(*args)` and put its result on `queue`."""
    queue.put(fn(*args))
