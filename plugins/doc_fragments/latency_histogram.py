# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The service's latency histogram, for the modules that measure its response time.
    DOCUMENTATION = r'''
options:
  service:
    description: The service, matched against O(service_label).
    type: str
    required: true
  metric:
    description:
      - Base name of the latency histogram, in seconds; the module reads its C(_bucket) and C(_count)
        series. The demo apps expose C(http_request_duration_seconds).
    type: str
    default: http_request_duration_seconds
  service_label:
    description: Label that names the service, for example C(service), C(job) or C(app).
    type: str
    default: service
  selector:
    description:
      - Extra label matchers, as a mapping of label to value (exact match), for example a namespace.
    type: dict
    default: {}
'''
