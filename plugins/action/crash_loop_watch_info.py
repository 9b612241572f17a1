# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.crash_loop_watch_info in the controller process when its task runs on the controller."""

from __future__ import annotations

from ansible_collections.sre.runbooks.plugins.module_utils import crash_loop_watch_info
from ansible_collections.sre.runbooks.plugins.plugin_utils.in_process import InProcessAction


class ActionModule(InProcessAction):
    body = crash_loop_watch_info
