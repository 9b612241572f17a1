# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sre.runbooks.alertmanager: an ansible-rulebook event source for Alertmanager webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive Alertmanager webhook notifications, one event per alert.
description:
  - An ansible-rulebook event source that listens for Alertmanager's webhook notifications
    (C(webhook_configs), payload version 4) on O(host):O(port), any path, and puts one event on
    the queue for each alert of a notification, firing or resolved.
  - Each event is C({alert, payload, group, pagerduty_dedup_key, meta}). C(alert) is the alert as
    Alertmanager sent it (C(status), C(labels), C(annotations), C(startsAt), C(endsAt),
    C(generatorURL), C(fingerprint)). C(payload) is the rest of the notification (C(version),
    C(groupKey), C(truncatedAlerts), C(status), C(receiver), C(groupLabels), C(commonLabels),
    C(commonAnnotations), C(externalURL)). C(pagerduty_dedup_key) is the sha256 hex digest of
    C(groupKey), the dedup_key that Alertmanager's PagerDuty integration sends for the same group
    when both integrations sit in one receiver, so a playbook can acknowledge or resolve the page
    Alertmanager opened (rulebooks have no hash filter). C(meta) has C(endpoint) (the path) and
    C(headers) (without C(Authorization)).
  - Each event also has C(group), the services of the notification's firing alerts (the values of
    their O(service_label) label), C(services) (sorted, comma-separated, as C(-e service=) takes
    them) and C(size), so that a rulebook can hand one Alertmanager group, an alert storm, to one
    run of the runbook.
  - The body must be a JSON object with a list C(alerts); anything else is answered with HTTP 400
    and makes no event. Other versions than 4 are accepted with a warning.
  - Listens on the loopback address unless told otherwise. With O(token), only requests carrying
    C(Authorization: Bearer <token>) are accepted (Alertmanager's C(http_config.authorization)).
    A webhook that starts remediations must not be open to whoever reaches it, so the source
    refuses to listen on any other address than loopback without a token.
  - Every refused request (no or a wrong token, a body that is not a notification) is logged with
    its reason and the client's address.
  - This is the collection's own source, so that the rulebook runs where the C(ansible.eda)
    collection cannot be installed; unlike C(ansible.eda.alertmanager) it sets no C(meta.hosts)
    (O(host_label) names a label to take them from).
options:
  host:
    description: The address to listen on.
    type: str
    default: 127.0.0.1
  port:
    description: The TCP port to listen on.
    type: int
    default: 5001
  token:
    description:
      - A bearer token that each request must carry. Required to listen on an address other than
        loopback. Empty means none.
    type: str
  service_label:
    description: The label that names an alert's service, for C(group).
    type: str
    default: service
  host_label:
    description:
      - A label whose value becomes C(meta.hosts), which limits a C(run_playbook) action to that
        inventory host. Unset, no host limit is set (the playbook picks its hosts).
    type: str
"""

EXAMPLES = r"""
- name: High Error Rate from Alertmanager
  hosts: all
  sources:
    - sre.runbooks.alertmanager:
        host: 127.0.0.1
        port: 5001
  rules:
    - name: Run the runbook for a firing alert
      condition: event.alert.status == "firing"
      action:
        run_playbook:
          name: playbooks/high_error_rate.yml
          extra_vars:
            service: "{{ event.alert.labels.service }}"
"""

LOGGER = logging.getLogger(__name__)

QUEUE = web.AppKey("queue", asyncio.Queue)
TOKEN = web.AppKey("token", str)
HOST_LABEL = web.AppKey("host_label", str)
SERVICE_LABEL = web.AppKey("service_label", str)


def is_loopback(host):
    """Whether `host` (an address or localhost) is this machine's loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dedup_key(group_key):
    """The dedup_key of Alertmanager's PagerDuty integration: sha256 hex of the group key."""
    return hashlib.sha256(group_key.encode("utf-8")).hexdigest()


def events_of(body, endpoint, headers, host_label="", service_label="service"):
    """One event per alert of an Alertmanager webhook body, each with the services of its group's
    firing alerts; ValueError for a body that is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise ValueError("not an Alertmanager notification: a JSON object with a list `alerts`")
    if str(body.get("version")) != "4":
        LOGGER.warning("Alertmanager webhook payload version %r, expected 4", body.get("version"))
    payload = {key: value for key, value in body.items() if key != "alerts"}
    group_key = payload.get("groupKey")
    meta = {"endpoint": endpoint,
            "headers": {k: v for k, v in headers.items() if k.lower() != "authorization"}}
    if not all(isinstance(alert, dict) for alert in body["alerts"]):
        raise ValueError("an item of `alerts` is not an object")
    services = sorted({str((alert.get("labels") or {}).get(service_label)) for alert in body["alerts"]
                       if alert.get("status") == "firing" and (alert.get("labels") or {}).get(service_label)})
    group = {"services": ",".join(services), "size": len(services)}
    events = []
    for alert in body["alerts"]:
        event = {"alert": alert, "payload": payload, "group": group,
                 "pagerduty_dedup_key": dedup_key(group_key) if isinstance(group_key, str) else None,
                 "meta": dict(meta)}
        host = (alert.get("labels") or {}).get(host_label) if host_label else None
        if host:
            event["meta"]["hosts"] = [host]
        events.append(event)
    return events


def refused(request, error, reason):
    """The HTTP error `error` with `reason`, logged with the client's address."""
    LOGGER.warning("refused a webhook from %s to /%s: %s", request.remote, request.match_info["endpoint"], reason)
    return error(text=reason)


async def receive(request):
    """POST /<anything>: the notification's alerts onto the queue."""
    token = request.app[TOKEN]
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode("utf-8"), ("Bearer " + token).encode("utf-8")):
            raise refused(request, web.HTTPUnauthorized,
                          "a valid bearer token is required" if given else "no Authorization header (a bearer token)")
    try:
        body = await request.json()
    except ValueError:
        raise refused(request, web.HTTPBadRequest, "the body is not JSON") from None
    try:
        events = events_of(body, request.match_info["endpoint"], dict(request.headers),
                           request.app[HOST_LABEL], request.app[SERVICE_LABEL])
    except ValueError as exc:
        raise refused(request, web.HTTPBadRequest, str(exc)) from None
    for event in events:
        await request.app[QUEUE].put(event)
    LOGGER.info("%d alert(s) from %s (%s, group %s)", len(events), body.get("receiver"),
                body.get("status"), body.get("groupKey"))
    return web.json_response({"accepted": len(events)})


async def main(queue, args):
    """Serves until cancelled."""
    host, port = str(args.get("host") or "127.0.0.1"), int(args.get("port") or 5001)
    if not args.get("token") and not is_loopback(host):
        raise ValueError("sre.runbooks.alertmanager: listening on %s without a token would let whoever reaches it "
                         "start the runbook: set token here and in Alertmanager's http_config.authorization" % host)
    app = web.Application()
    app[QUEUE] = queue
    app[TOKEN] = str(args.get("token") or "")
    app[HOST_LABEL] = str(args.get("host_label") or "")
    app[SERVICE_LABEL] = str(args.get("service_label") or "service")
    app.router.add_post("/{endpoint:.*}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    LOGGER.info("listening for Alertmanager webhooks on http://%s:%d/", host, port)
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    # Try it alone: events are printed instead of queued.

    class _Printer:
        async def put(self, event):
            print(json.dumps(event, indent=2, sort_keys=True))

    asyncio.run(main(_Printer(), {"host": "127.0.0.1", "port": 5001}))
