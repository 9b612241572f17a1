# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runbook's figures and outcomes in words, as its messages and its document write them
(module_utils formatting and incident_report): rate, percent, share, ms, seconds, count and
outcome_words; and its moments as Grafana annotations (grafana_annotations). A figure that is
not a number, a missing one included, reads as 'no traffic' or 'n/a'."""

from __future__ import annotations

from ansible_collections.sre.runbooks.plugins.module_utils import incident_report
from ansible_collections.sre.runbooks.plugins.module_utils.common import formatting
from ansible_collections.sre.runbooks.plugins.module_utils.render.markers import grafana_annotations

try:
    from ansible.template import accept_args_markers
except ImportError:  # ansible-core before 2.19 passes undefined values to filters as they are
    def accept_args_markers(plugin):
        return plugin


def outcome_words(incident):
    """What the incident's outcome means ('' when it is not known)."""
    return incident_report.outcome_words(incident) if isinstance(incident, dict) else ''


class FilterModule:
    def filters(self):
        figures = {name: accept_args_markers(getattr(formatting, name))
                   for name in ('rate', 'percent', 'share', 'ms', 'seconds', 'count')}
        return dict(figures, outcome_words=outcome_words, grafana_annotations=grafana_annotations)
