# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception every module and action plugin fails with (common/module.py)."""

from __future__ import annotations

from typing import Any


class RunbookError(Exception):
    """A failure phrased for the person who reads it: what went wrong and what to check.
    details: keys returned with the failed result (status_code, response, lock, before...)."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details
