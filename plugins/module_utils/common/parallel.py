# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent I/O inside one module: an incident is no time to wait for calls one by one."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

MAX_WORKERS = 16
K = TypeVar('K', bound=Hashable)


# Callable[..., Any]: the calls are often lambdas that bind a loop variable as a default argument.
def run_all(calls: Mapping[K, Callable[..., Any]]) -> dict[K, tuple[Any, BaseException | None]]:
    """Runs {name: zero-argument callable} concurrently; returns {name: (result, exception)}."""
    if not calls:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(calls))) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
    outcomes: dict[K, tuple[Any, BaseException | None]] = {}
    for name, future in futures.items():
        error = future.exception()
        outcomes[name] = (None, error) if error else (future.result(), None)
    return outcomes
