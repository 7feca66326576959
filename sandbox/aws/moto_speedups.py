"""Two of moto's per-request costs removed, without changing any answer.

- Each error response builds the service's error lookup table again (every error shape of the RDS model, about a
  millisecond): `moto.core.errors.get_error_model` makes a new `ErrorLookupFactory` per call, so the factory's cache
  never serves a second lookup. Here every factory shares one cache, per serviceId, as the cache was meant to.
- Each request lists the response class's methods (`inspect.getmembers`) to check that the action is one of them.
  Here the list is kept per class and listed again whenever an action is not in it, so a method added to the class
  later (the sandbox adds some) is still found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import moto.core.responses
from moto.core.errors import ErrorLookupFactory

_error_tables: dict[str, Any] = {}
_method_names: dict[type, _MethodNames] = {}
_installed = False


class _MethodNames:
    """`action in names` as moto asks it, from a kept listing, listed again on a miss."""

    def __init__(self, clazz: type, list_names: Callable[[object], list[str]]) -> None:
        self._clazz = clazz
        self._list_names = list_names
        self._names = frozenset(list_names(clazz))

    def __contains__(self, name: object) -> bool:
        if name not in self._names:
            self._names = frozenset(self._list_names(self._clazz))
        return name in self._names


def install() -> None:
    """Patch moto once per process (idempotent)."""
    global _installed
    if _installed:
        return
    list_names = moto.core.responses.method_names_from_class

    def method_names(clazz: type) -> _MethodNames:
        if clazz not in _method_names:
            _method_names[clazz] = _MethodNames(clazz, list_names)
        return _method_names[clazz]

    def shared_cache(self: ErrorLookupFactory) -> None:
        self._error_lut_cache = _error_tables

    moto.core.responses.method_names_from_class = method_names  # type: ignore[assignment]
    ErrorLookupFactory.__init__ = shared_cache  # type: ignore[method-assign]
    _installed = True
