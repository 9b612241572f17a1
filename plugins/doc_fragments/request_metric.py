# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The request counter and its labels, for the modules that measure errors; SERVICE, the one
    # service they are about (storm_info takes many, and documents its own).
    DOCUMENTATION = r'''
options:
  metric:
    description: Request counter.
    type: str
    default: http_requests_total
  service_label:
    description: Label that names the service, for example C(service), C(job) or C(app).
    type: str
    default: service
  status_label:
    description:
      - Label holding the HTTP status code; the two runbooks use C(status) and C(status_code).
      - A label that none of the service's series carries fails the module (it would read as 0%
        errors), as does a O(selector) key they do not carry; values that do not look like HTTP
        codes and match no O(status_regex) are warned about.
    type: str
    default: status
  status_regex:
    description: Regular expression of the status codes that count as errors.
    type: str
    default: 5..
  selector:
    description:
      - Extra label matchers, as a mapping of label to value (exact match), for example a namespace.
    type: dict
    default: {}
'''

    SERVICE = r'''
options:
  service:
    description: The service, matched against O(service_label).
    type: str
    required: true
'''
