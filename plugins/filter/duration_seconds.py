# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""duration_seconds: '15m' -> 900.0, so that roles can count in the runbook's durations."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.sre.runbooks.plugins.module_utils.common.times import parse_duration


def duration_seconds(value):
    try:
        return parse_duration(value)
    except ValueError as err:
        raise AnsibleFilterError(str(err))


class FilterModule:
    def filters(self):
        return {'duration_seconds': duration_seconds}
