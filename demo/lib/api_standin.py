"""api-standin: local stand-ins of the Slack, PagerDuty, Statuspage and Grafana APIs for the demo rig.

One small threaded HTTP server on 127.0.0.1 (default port 18111) that answers as the vendors'
documented APIs do, so that the collection's modules (slack_notify, pagerduty_event,
statuspage_incident) and Alertmanager's PagerDuty notifier work against it unchanged, and that
keeps a journal of every request. None of the real services can be reached from the rig.

  /slack/api/chat.postMessage          Slack Web API: {ok, channel, ts, message}; thread_ts kept
  /slack/api/reactions.add             {ok: true}; the same reaction twice: already_reacted
  /slack/api/auth.test, conversations.info  the bot, and a channel by ID (the bot is in it)
      (Slack's refusals are HTTP 200 {ok: false, error}; no bearer token: not_authed)
  /pagerduty/events/v2/enqueue         PagerDuty Events API v2: 202 {status, message, dedup_key};
                                       400 {status: invalid event, message, errors} for a bad body;
                                       trigger/acknowledge/resolve keep each dedup_key's alert state
  /pagerduty/events/v2/change/enqueue  change events: 202
  /pagerduty/api/incidents[/{id}[/notes]]  PagerDuty REST API v2 (Authorization: Token token=...;
                                       From on writes): list (statuses[], incident_key), GET, PUT
                                       {incident: {type: incident_reference, status}}, notes; one
                                       incident per triggered alert
  /pagerduty/api/abilities             GET: the account's abilities (any token is accepted)
  /statuspage/v1/pages/{page}/incidents[/unresolved|/{id}]  Statuspage REST v1 (Authorization:
                                       OAuth <key>): create, list, get, PATCH/PUT; components' status
  /statuspage/v1/pages/{page}                    GET: the page (sre-demo, or one an incident named)
  /statuspage/v1/pages/{page}/components[/{id}]  the components the incidents named (and the
                                       demo's inference-gateway), with status
  /grafana/api/annotations[/{id}]      Grafana's annotations HTTP API (Authorization: Bearer <token>):
                                       POST {time, timeEnd, tags, text, dashboardUID} -> {message, id};
                                       GET ?from&to&tags&matchAny&dashboardUID -> the matching list
                                       (every tag, from <= time <= to); PATCH the fields given
  GET  /journal[?api=&since=]          every request in order: {seq, time_iso, api, method, path,
                                       body, status}; secrets (routing_key, tokens, keys,
                                       Authorization) are never stored
  POST /journal/reset                  clears the journal and all state
  POST /outage {api, status, retry_after, delay, count}  the next COUNT (default 1) requests to
                                       API (slack, pagerduty-events, pagerduty-rest, statuspage)
                                       wait DELAY seconds (a slow vendor, default 0), then answer
                                       STATUS (500, 429 with Retry-After: RETRY_AFTER...) as the
                                       vendor's error, or as usual without one; journaled as usual.
                                       DELETE /outage and /journal/reset end every outage.
  GET  /state                          the alerts, incidents, messages and pages kept
  GET  /health                         {ok: true}

Started by `demo/rig.sh up` (pidfile /run/sre-demo/api-standin.pid, process name api-standin),
stopped by `demo/rig.sh down` through that pidfile. Standard library only.

usage: python3 demo/lib/api_standin.py [--host 127.0.0.1] [--port 18111] [--log FILE]
  --port 0 picks a free port; the one start line on stdout names the URL.
"""

import argparse
import hashlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LOG = logging.getLogger("api-standin")

# Keys whose values are secrets: dropped from the journal, wherever they sit in a body.
SECRET_KEYS = frozenset(("routing_key", "service_key", "token", "api_key", "api_token",
                         "password", "secret", "authorization", "client_secret"))

SEVERITIES = ("critical", "error", "warning", "info")
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_STATUS_ORDER = ("triggered", "acknowledged", "resolved")
SP_INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
SP_COMPONENT_STATUSES = ("operational", "under_maintenance", "degraded_performance",
                         "partial_outage", "major_outage")
SP_IMPACTS = ("none", "minor", "major", "critical")
SP_IMPACT_OF = {"operational": "none", "under_maintenance": "maintenance",
                "degraded_performance": "minor", "partial_outage": "major", "major_outage": "critical"}
SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
PD_ABILITIES = ("teams", "read_only_users", "urgencies", "response_operations")
# The demo's status page and its component exist before any incident names them.
SP_DEMO_PAGES = {"sre-demo": ("SRE demo", ("inference-gateway",))}


def iso(t=None, ms=True):
    stamp = datetime.fromtimestamp(time.time() if t is None else t, tz=timezone.utc)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (".%03dZ" % (stamp.microsecond // 1000) if ms else "Z")


def redact(value):
    """The value without the secrets: keys named like secrets are dropped, at any depth."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if str(k).lower() not in SECRET_KEYS}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def short_id(prefix, *parts, length=6):
    """A PagerDuty/Statuspage-looking id, stable for the same parts."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()
    alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    number = int(digest, 16)
    out = ""
    for _position in range(length):
        number, rest = divmod(number, len(alphabet))
        out += alphabet[rest]
    return prefix + out


class Answer(Exception):
    """Raised by a handler to answer at once: status and JSON (or bytes) body."""

    def __init__(self, status, body, headers=None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class State:
    """Everything the stand-ins keep, behind one lock."""

    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        with self.lock:
            self.journal = []
            self.seq = 0
            self.last_ts = 0  # Slack ts, in microseconds: unique and increasing
            self.messages = {}  # (channel, ts) -> message
            self.alerts = {}  # dedup_key -> {status, incident_id, ...}
            self.incidents = {}  # id -> incident
            self.incident_number = 0
            self.notes = {}  # incident id -> [note]
            self.change_events = []
            self.pages = {}  # page id -> {name, incidents: {id: incident}, components: {id: component}}
            self.sp_clock = 0.0
            self.outages = {}  # api -> {status, retry_after, delay, count}
            self.annotations = []  # Grafana's, as it stores them
            for page_id, (name, components) in SP_DEMO_PAGES.items():
                page = self.page(page_id, name)
                for component_id in components:
                    component(page, component_id, iso())

    # ---------------------------------------------------------------- journal

    def record(self, api, method, path, body, status):
        with self.lock:
            self.seq += 1
            entry = {"seq": self.seq, "time_iso": iso(), "api": api, "method": method,
                     "path": path, "body": redact(body), "status": status}
            self.journal.append(entry)
            return entry

    def outage(self, api):
        """The outage that the next request to API meets, or None; counts it down."""
        with self.lock:
            outage = self.outages.get(api)
            if not outage:
                return None
            outage["count"] -= 1
            if outage["count"] <= 0:
                del self.outages[api]
            return outage

    # ---------------------------------------------------------------- Slack

    def next_ts(self):
        with self.lock:
            now_us = int(time.time() * 1000000)
            self.last_ts = max(now_us, self.last_ts + 1)
            return "%d.%06d" % divmod(self.last_ts, 1000000)

    # ---------------------------------------------------------------- Statuspage

    def sp_now(self):
        """Statuspage times, strictly increasing so that the latest update is the newest."""
        with self.lock:
            self.sp_clock = max(time.time(), self.sp_clock + 0.001)
            return iso(self.sp_clock)

    def page(self, page_id, name=None):
        with self.lock:
            return self.pages.setdefault(page_id, {"name": name or page_id, "incidents": {},
                                                   "components": {}})


# ==================================================================== Slack Web API

def slack_fields(handler, raw):
    """Slack methods take JSON (with a bearer token) or form fields (token may be a field)."""
    ctype = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            fields = json.loads(raw or b"{}")
        except ValueError:
            raise Answer(200, {"ok": False, "error": "invalid_json"})
        if not isinstance(fields, dict):
            raise Answer(200, {"ok": False, "error": "invalid_json"})
        return fields
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


def request_fields(handler, raw):
    """A request's JSON or form fields, {} when it has neither."""
    try:
        return slack_fields(handler, raw)
    except Answer:
        return {}


def slack_authed(handler, fields):
    auth = handler.headers.get("Authorization") or ""
    if auth.startswith("Bearer ") and auth[7:].strip():
        return True
    return bool(fields.get("token"))


def slack_channel_id(channel):
    if SLACK_CHANNEL_ID.match(channel):
        return channel
    return short_id("C", channel.lstrip("#"), length=10)


def slack(state, handler, method, rest, raw):
    if method != "POST":
        raise Answer(200, {"ok": False, "error": "method_not_supported_for_channel_type"}
                     if rest in ("chat.postMessage", "reactions.add") else
                     {"ok": False, "error": "unknown_method"})
    fields = slack_fields(handler, raw)
    if rest not in SLACK_METHODS:
        return 200, {"ok": False, "error": "unknown_method", "req_method": rest}, fields
    if not slack_authed(handler, fields):
        return 200, {"ok": False, "error": "not_authed"}, fields
    return SLACK_METHODS[rest](state, fields)


def auth_test(_state, fields):
    return 200, {"ok": True, "url": "https://sre-demo.slack.com/", "team": "SRE demo",
                 "user": "sre-runbooks", "team_id": "T0SREDEMO", "user_id": "U0SREBOT1",
                 "bot_id": "B0STANDIN1", "is_enterprise_install": False}, fields


def conversation_info(_state, fields):
    """conversations.info takes a channel ID; the stand-in's bot is in every channel."""
    channel = str(fields.get("channel") or "")
    if not SLACK_CHANNEL_ID.match(channel):
        return 200, {"ok": False, "error": "channel_not_found"}, fields
    return 200, {"ok": True, "channel": {
        "id": channel, "name": "incidents", "is_channel": True, "is_private": False,
        "is_archived": False, "is_general": False, "is_member": True, "created": 1700000000,
        "creator": "U0SREBOT1"}}, fields


def post_message(state, fields):
    channel = str(fields.get("channel") or "")
    if not channel:
        return 200, {"ok": False, "error": "channel_not_found"}, fields
    text, blocks = fields.get("text"), fields.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return 200, {"ok": False, "error": "invalid_blocks"}, fields
    if not text and not blocks:
        return 200, {"ok": False, "error": "no_text"}, fields
    channel_id = slack_channel_id(channel)
    ts = state.next_ts()
    message = {"type": "message", "subtype": "bot_message", "text": text or "", "ts": ts,
               "bot_id": "B0STANDIN1", "app_id": "A0STANDIN1"}
    if blocks:
        message["blocks"] = blocks
    thread_ts = fields.get("thread_ts")
    if thread_ts:
        message["thread_ts"] = str(thread_ts)
    with state.lock:
        state.messages[(channel_id, ts)] = dict(message, reactions=[])
        parent = state.messages.get((channel_id, str(thread_ts))) if thread_ts else None
        if parent is not None:
            parent.setdefault("thread_ts", parent["ts"])
            parent["reply_count"] = parent.get("reply_count", 0) + 1
    return 200, {"ok": True, "channel": channel_id, "ts": ts, "message": message}, fields


def add_reaction(state, fields):
    channel, timestamp = str(fields.get("channel") or ""), str(fields.get("timestamp") or "")
    name = str(fields.get("name") or "")
    if not name or ":" in name or " " in name:
        return 200, {"ok": False, "error": "invalid_name"}, fields
    if not channel:
        return 200, {"ok": False, "error": "channel_not_found"}, fields
    if not timestamp:
        return 200, {"ok": False, "error": "no_item_specified"}, fields
    with state.lock:
        message = state.messages.get((slack_channel_id(channel), timestamp))
        if message is None:
            return 200, {"ok": False, "error": "message_not_found"}, fields
        if name in message["reactions"]:
            return 200, {"ok": False, "error": "already_reacted"}, fields
        message["reactions"].append(name)
    return 200, {"ok": True}, fields


SLACK_METHODS = {"chat.postMessage": post_message, "reactions.add": add_reaction,
                 "auth.test": auth_test, "conversations.info": conversation_info}


# ==================================================================== PagerDuty Events API v2

def pd_invalid(errors, message="Event object is invalid"):
    return 400, {"status": "invalid event", "message": message, "errors": errors}


def pd_json(raw):
    try:
        body = json.loads(raw or b"")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def pagerduty_events(state, handler, method, rest, raw):
    body = pd_json(raw)
    if method != "POST" or rest not in ("v2/enqueue", "v2/change/enqueue"):
        return 404, {"status": "not found", "message": "Not Found"}, body
    if body is None:
        return pd_invalid(["Event object is not valid JSON"], "Invalid JSON") + (raw.decode(
            "utf-8", "replace")[:2000],)
    errors = []
    if not isinstance(body.get("routing_key"), str) or not body.get("routing_key"):
        errors.append("'routing_key' is missing or blank")
    payload = body.get("payload")
    if rest == "v2/change/enqueue":
        if not isinstance(payload, dict) or not payload.get("summary"):
            errors.append("'payload.summary' is missing or blank")
        if errors:
            return pd_invalid(errors, "Change event object is invalid") + (body,)
        with state.lock:
            state.change_events.append(redact(body))
        return 202, {"status": "success", "message": "Change event processed"}, body
    action = body.get("event_action")
    if action not in EVENT_ACTIONS:
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup_key = body.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action == "trigger":
        if not isinstance(payload, dict):
            errors.append("'payload' is missing")
        else:
            for name in ("summary", "source", "severity"):
                if not payload.get(name):
                    errors.append("'payload.%s' is missing or blank" % name)
            if payload.get("severity") and payload["severity"] not in SEVERITIES:
                errors.append("'payload.severity' must be one of critical, error, warning, info")
            if len(str(payload.get("summary") or "")) > 1024:
                errors.append("'payload.summary' is longer than 1024 characters")
    elif action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is required for %s events" % action)
    if errors:
        return pd_invalid(errors) + (body,)
    if not dedup_key:
        dedup_key = uuid.uuid4().hex
    apply_event(state, action, dedup_key, body)
    return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}, body


def new_incident(state, dedup_key, payload):
    """An incident for a newly triggered alert, as the REST API shows it."""
    state.incident_number += 1
    number = state.incident_number
    incident_id = short_id("P", dedup_key, number)
    now = iso(ms=False)
    summary = str(payload.get("summary") or dedup_key)
    incident = {
        "id": incident_id, "type": "incident", "summary": "[#%d] %s" % (number, summary),
        "html_url": "https://standin.pagerduty.com/incidents/" + incident_id,
        "incident_number": number, "title": summary, "created_at": now, "updated_at": now,
        "status": "triggered", "incident_key": dedup_key, "urgency": "high",
        "service": {"id": "PSTANDN", "type": "service_reference", "summary": "sre-demo"},
        "assignments": [], "acknowledgements": [], "last_status_change_at": now,
        "alert_counts": {"all": 1, "triggered": 1, "resolved": 0},
        "severity": payload.get("severity"), "source": payload.get("source"),
    }
    state.incidents[incident_id] = incident
    return incident


def set_incident_status(incident, status, who=None):
    now = iso(ms=False)
    incident.update(status=status, updated_at=now, last_status_change_at=now)
    if status == "acknowledged":
        incident["acknowledgements"].append({"at": now, "acknowledger": who or {
            "type": "service_reference", "summary": "Events API"}})
    if status == "resolved":
        incident["alert_counts"].update(triggered=0, resolved=1)


def apply_event(state, action, dedup_key, body):
    with state.lock:
        alert = state.alerts.get(dedup_key)
        incident = state.incidents.get(alert["incident_id"]) if alert else None
        if action == "trigger":
            if alert is None or alert["status"] == "resolved":
                incident = new_incident(state, dedup_key, body.get("payload") or {})
                state.alerts[dedup_key] = {"dedup_key": dedup_key, "status": "triggered",
                                           "incident_id": incident["id"], "events": []}
                alert = state.alerts[dedup_key]
        elif alert is None or alert["status"] == "resolved":
            return  # PagerDuty accepts it (202) and changes nothing
        else:
            status = "acknowledged" if action == "acknowledge" else "resolved"
            if PD_STATUS_ORDER.index(status) > PD_STATUS_ORDER.index(alert["status"]):
                alert["status"] = status
                set_incident_status(incident, status)
        alert["events"].append({"event_action": action, "at": iso()})


# ==================================================================== PagerDuty REST API v2

def pd_rest_error(status, message, code, errors=None):
    error = {"message": message, "code": code}
    if errors:
        error["errors"] = errors
    return status, {"error": error}


def pagerduty_rest(state, handler, method, rest, query, raw):
    body = pd_json(raw) if raw else None
    auth = handler.headers.get("Authorization") or ""
    if not re.match(r"^Token token=\S+$", auth.strip()):
        return pd_rest_error(401, "Authentication failed", 2006) + (body,)
    parts = [unquote(p) for p in rest.split("/") if p]
    if parts == ["abilities"] and method == "GET":
        return 200, {"abilities": list(PD_ABILITIES)}, body
    if not parts or parts[0] != "incidents" or len(parts) > 3:
        return pd_rest_error(404, "Not Found", 2100) + (body,)
    writes = method in ("PUT", "POST")
    sender = handler.headers.get("From") or ""
    if writes and "@" not in sender:
        return pd_rest_error(400, "Invalid Input Provided", 2001, [
            'You must specify a user\'s email address in the "From" header to perform this '
            'action']) + (body,)
    if writes and body is None:
        return pd_rest_error(400, "Invalid Input Provided", 2001, ["Request body is not JSON"]) + (raw.decode(
            "utf-8", "replace")[:2000],)
    with state.lock:
        if len(parts) == 1:
            if method != "GET":
                return pd_rest_error(404, "Not Found", 2100) + (body,)
            wanted = query.get("statuses[]") or query.get("statuses") or []
            keys = query.get("incident_key") or []
            found = [dict(i) for i in sorted(state.incidents.values(), key=lambda i: i["incident_number"])
                     if (not wanted or i["status"] in wanted) and (not keys or i["incident_key"] in keys)]
            return 200, {"incidents": found, "limit": 25, "offset": 0, "more": False,
                         "total": None}, body
        incident = state.incidents.get(parts[1])
        if incident is None:
            return pd_rest_error(404, "Not Found", 2100) + (body,)
        if len(parts) == 3:
            if parts[2] != "notes":
                return pd_rest_error(404, "Not Found", 2100) + (body,)
            if method == "GET":
                return 200, {"notes": list(state.notes.get(incident["id"], []))}, body
            if method != "POST":
                return pd_rest_error(404, "Not Found", 2100) + (body,)
            content = (body.get("note") or {}).get("content") if isinstance(body.get("note"), dict) else None
            if not content:
                return pd_rest_error(400, "Invalid Input Provided", 2001,
                                     ["Note content can't be blank"]) + (body,)
            note = {"id": short_id("N", incident["id"], len(state.notes.get(incident["id"], []))),
                    "content": content, "created_at": iso(ms=False),
                    "user": {"id": short_id("U", sender), "type": "user_reference", "summary": sender}}
            state.notes.setdefault(incident["id"], []).append(note)
            return 201, {"note": note}, body
        if method == "GET":
            return 200, {"incident": dict(incident)}, body
        if method != "PUT":
            return pd_rest_error(404, "Not Found", 2100) + (body,)
        fields = body.get("incident") if isinstance(body.get("incident"), dict) else None
        if not fields or fields.get("type") not in ("incident", "incident_reference"):
            return pd_rest_error(400, "Invalid Input Provided", 2001,
                                 ["Incident type must be incident_reference"]) + (body,)
        status = fields.get("status")
        if status is not None:
            if status not in ("acknowledged", "resolved"):
                return pd_rest_error(400, "Invalid Input Provided", 2001,
                                     ["Status must be one of acknowledged, resolved"]) + (body,)
            if incident["status"] == "resolved" and status != "resolved":
                return pd_rest_error(400, "Invalid Input Provided", 2001,
                                     ["Incident Already Resolved"]) + (body,)
            if incident["status"] != status:
                set_incident_status(incident, status, {"type": "user_reference", "summary": sender})
                alert = state.alerts.get(incident["incident_key"])
                if alert is not None and alert.get("incident_id") == incident["id"]:
                    alert["status"] = status
        for key in ("title", "urgency"):
            if fields.get(key):
                incident[key] = fields[key]
        return 200, {"incident": dict(incident)}, body


# ==================================================================== Statuspage REST API v1

def sp_error(status, message):
    return status, {"message": message}


def statuspage(state, handler, method, rest, raw):
    body = pd_json(raw) if raw else None
    auth = (handler.headers.get("Authorization") or "").strip()
    if not re.match(r"^OAuth \S+$", auth):
        return sp_error(401, "Could not authenticate") + (body,)
    parts = [unquote(p) for p in rest.split("/") if p]
    if len(parts) == 2 and parts[0] == "pages" and method == "GET":
        with state.lock:
            page = state.pages.get(parts[1])
            if page is None:
                return sp_error(404, "The requested resource could not be found.") + (body,)
            return 200, {"id": parts[1], "name": page["name"], "subdomain": parts[1],
                         "time_zone": "Etc/UTC"}, body
    if len(parts) < 3 or parts[0] != "pages" or parts[2] not in ("incidents", "components"):
        return sp_error(404, "The requested resource could not be found.") + (body,)
    if method in ("POST", "PATCH", "PUT") and body is None:
        return sp_error(400, "The request body is not valid JSON") + (raw.decode(
            "utf-8", "replace")[:2000],)
    with state.lock:
        # Reading a page's components creates nothing: an unknown page is a 404.
        if parts[2] == "components" and method == "GET" and parts[1] not in state.pages:
            return sp_error(404, "The requested resource could not be found.") + (body,)
        page = state.page(parts[1])
        if parts[2] == "components":
            return sp_components(page, method, parts[3:], body) + (body,)
        return sp_incidents(state, page, parts[1], method, parts[3:], body) + (body,)


def sp_components(page, method, rest, body):
    if not rest:
        if method != "GET":
            return sp_error(405, "Method not allowed")
        return 200, [dict(c) for c in page["components"].values()]
    component = page["components"].get(rest[0])
    if component is None or len(rest) > 1:
        return sp_error(404, "The requested resource could not be found.")
    if method == "GET":
        return 200, dict(component)
    if method in ("PATCH", "PUT"):
        status = ((body or {}).get("component") or {}).get("status")
        if status is not None and status not in SP_COMPONENT_STATUSES:
            return sp_error(422, "Status is not included in the list")
        if status:
            component.update(status=status, updated_at=iso())
        return 200, dict(component)
    return sp_error(405, "Method not allowed")


def component(page, component_id, now):
    return page["components"].setdefault(component_id, {
        "id": component_id, "page_id": None, "name": component_id, "status": "operational",
        "created_at": now, "updated_at": now, "position": len(page["components"]) + 1,
        "description": None, "showcase": True, "group_id": None, "group": False,
        "only_show_if_degraded": False})


def sp_validate(fields):
    if fields.get("status") is not None and fields["status"] not in SP_INCIDENT_STATUSES:
        return "Status is not included in the list"
    if fields.get("impact_override") is not None and fields["impact_override"] not in SP_IMPACTS:
        return "Impact override is not included in the list"
    components = fields.get("components")
    if components is not None:
        if not isinstance(components, dict):
            return "Components is invalid"
        if any(s not in SP_COMPONENT_STATUSES for s in components.values()):
            return "Components is invalid"
    ids = fields.get("component_ids")
    if ids is not None and not isinstance(ids, list):
        return "Component ids is invalid"
    return None


def sp_incidents(state, page, page_id, method, rest, body):
    incidents = page["incidents"]
    if not rest or rest == ["unresolved"]:
        if method == "GET":
            found = sorted(incidents.values(), key=lambda i: i["created_at"], reverse=True)
            if rest:
                found = [i for i in found if i["status"] not in ("resolved", "postmortem")]
            return 200, [sp_view(page, i) for i in found]
        if method != "POST" or rest:
            return sp_error(405, "Method not allowed")
        fields = body.get("incident") if isinstance(body.get("incident"), dict) else None
        if not fields or not fields.get("name"):
            return sp_error(422, "Name can't be blank")
        problem = sp_validate(fields)
        if problem:
            return sp_error(422, problem)
        now = state.sp_now()
        incident_id = short_id("sp", page_id, len(incidents) + 1, now, length=10).lower()
        incident = {"id": incident_id, "name": fields["name"], "status": "investigating",
                    "created_at": now, "updated_at": now, "monitoring_at": None,
                    "resolved_at": None, "impact": "none", "impact_override": None,
                    "shortlink": "https://stspg.io/" + incident_id[-6:], "page_id": page_id,
                    "started_at": now, "postmortem_body": None, "component_ids": [],
                    "incident_updates": []}
        incidents[incident_id] = incident
        sp_apply(state, page, incident, fields, created=True)
        return 201, sp_view(page, incident)
    if len(rest) > 1:
        return sp_error(404, "The requested resource could not be found.")
    incident = incidents.get(rest[0])
    if incident is None:
        return sp_error(404, "The requested resource could not be found.")
    if method == "GET":
        return 200, sp_view(page, incident)
    if method == "DELETE":
        del incidents[rest[0]]
        return 200, sp_view(page, incident)
    if method not in ("PATCH", "PUT"):
        return sp_error(405, "Method not allowed")
    fields = body.get("incident") if isinstance(body.get("incident"), dict) else None
    if fields is None:
        return sp_error(400, "incident is missing")
    problem = sp_validate(fields)
    if problem:
        return sp_error(422, problem)
    sp_apply(state, page, incident, fields, created=False)
    return 200, sp_view(page, incident)


def sp_apply(state, page, incident, fields, created):
    """Statuspage's rules: a new status or body makes an incident update; components named get
    their status on the page; the impact follows the worst component unless overridden."""
    now = state.sp_now()
    for key in ("name", "impact_override", "postmortem_body"):
        if key in fields:
            incident[key] = fields[key]
    status = fields.get("status") or incident["status"]
    changed_status = status != incident["status"]
    incident["status"] = status
    if status == "monitoring" and changed_status:
        incident["monitoring_at"] = now
    if status == "resolved" and changed_status:
        incident["resolved_at"] = now
    affected = []
    for component_id, component_status in (fields.get("components") or {}).items():
        comp = component(page, component_id, now)
        comp["page_id"] = incident["page_id"]
        affected.append({"code": component_id, "name": comp["name"],
                         "old_status": comp["status"], "new_status": component_status})
        comp.update(status=component_status, updated_at=now)
    ids = list(incident["component_ids"])
    for component_id in list(fields.get("component_ids") or []) + list((fields.get("components") or {})):
        component(page, component_id, now)["page_id"] = incident["page_id"]
        if component_id not in ids:
            ids.append(component_id)
    incident["component_ids"] = ids
    worst = max((SP_COMPONENT_STATUSES.index(page["components"][c]["status"]) for c in ids), default=0)
    incident["impact"] = incident["impact_override"] or SP_IMPACT_OF[SP_COMPONENT_STATUSES[worst]]
    if created or changed_status or fields.get("body") or affected:
        incident["incident_updates"].insert(0, {
            "id": short_id("up", incident["id"], len(incident["incident_updates"]), now, length=10).lower(),
            "incident_id": incident["id"], "status": status, "body": fields.get("body") or "",
            "created_at": now, "updated_at": now, "display_at": now,
            "affected_components": affected or None,
            "deliver_notifications": bool(fields.get("deliver_notifications", True))})
    incident["updated_at"] = now


def sp_view(page, incident):
    view = dict(incident)
    view["components"] = [dict(page["components"][c]) for c in incident["component_ids"]]
    view["incident_updates"] = [dict(u) for u in incident["incident_updates"]]
    del view["component_ids"]
    return view


# ==================================================================== the server

# path prefix, API name (the journal's), handler(state, handler, method, rest of the path, query, body)
# ==================================================================== Grafana annotations API

def grafana(state, handler, method, rest, query, raw):
    body = pd_json(raw) if raw else None
    if not re.match(r"^Bearer \S+$", (handler.headers.get("Authorization") or "").strip()):
        return 401, {"message": "Unauthorized"}, body
    parts = [p for p in rest.split("/") if p]
    if parts[:1] != ["annotations"]:
        return 404, {"message": "Not found"}, body
    with state.lock:
        if method == "GET" and len(parts) == 1:
            tags = set(query.get("tags", []))
            low, high = int(query.get("from", ["0"])[-1]), int(query.get("to", [str(2 ** 62)])[-1])
            uid = query.get("dashboardUID", [None])[-1]
            found = [a for a in state.annotations if tags <= set(a["tags"]) and low <= a["time"] <= high
                     and (uid is None or a["dashboardUID"] == uid)]
            return 200, found, body
        if method == "POST" and len(parts) == 1:
            if not isinstance(body, dict) or not body.get("text"):
                return 400, {"message": "Failed to save annotation"}, body
            annotation = {"id": len(state.annotations) + 1, "dashboardUID": body.get("dashboardUID", ""),
                          "panelId": body.get("panelId", 0), "time": int(body.get("time") or time.time() * 1000),
                          "tags": body.get("tags") or [], "text": body["text"]}
            annotation["timeEnd"] = int(body.get("timeEnd") or annotation["time"])
            state.annotations.append(annotation)
            return 200, {"message": "Annotation added", "id": annotation["id"]}, body
        if method == "PATCH" and len(parts) == 2 and parts[1].isdigit():
            found = next((a for a in state.annotations if a["id"] == int(parts[1])), None)
            if found is None:
                return 404, {"message": "Could not find annotation to update"}, body
            found.update({k: v for k, v in (body or {}).items() if k in ("time", "timeEnd", "tags", "text")})
            return 200, {"message": "Annotation patched"}, body
    return 405, {"message": "Method not allowed"}, body


API_ROUTES = (
    ("/slack/api/", "slack", lambda st, h, method, rest, _q, raw: slack(st, h, method, rest, raw)),
    ("/pagerduty/events/", "pagerduty-events",
     lambda st, h, method, rest, _q, raw: pagerduty_events(st, h, method, rest, raw)),
    ("/pagerduty/api/", "pagerduty-rest", pagerduty_rest),
    ("/statuspage/v1/", "statuspage", lambda st, h, method, rest, _q, raw: statuspage(st, h, method, rest, raw)),
    ("/grafana/api/", "grafana", grafana),
)
OUTAGE_APIS = tuple(name for _prefix, name, _handler in API_ROUTES)


def outage_answer(api, status):
    """The error body each vendor documents for an overload or a server error."""
    if api == "slack":
        return {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}
    if api == "pagerduty-events":
        return {"status": "throttle event" if status == 429 else "error", "message": "stand-in outage"}
    if api == "pagerduty-rest":
        return {"error": {"message": "Rate Limit Exceeded" if status == 429 else "Internal Server Error",
                          "code": 2020 if status == 429 else 2000}}
    if api == "grafana":
        return {"message": "Too many requests" if status == 429 else "Internal Server Error"}
    return {"error": "Rate limit exceeded" if status == 429 else "Internal Server Error"}


def set_outage(state, raw):
    fields = json.loads(raw or b"{}")
    if fields.get("api") not in OUTAGE_APIS:
        raise Answer(400, {"message": "api must be one of %s" % ", ".join(OUTAGE_APIS)})
    outage = {"status": int(fields.get("status") or 0), "retry_after": fields.get("retry_after"),
              "delay": float(fields.get("delay") or 0), "count": int(fields.get("count") or 1)}
    with state.lock:
        state.outages[fields["api"]] = outage
    LOG.info("outage of %s: %s", fields["api"], outage)
    return outage


class Handler(BaseHTTPRequestHandler):
    server_version = "api-standin/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        LOG.info("%s %s", self.address_string(), fmt % args)

    def _send(self, status, body, headers=None):
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
            ctype = "text/plain; charset=utf-8"
        else:
            data = json.dumps(body).encode()
            ctype = "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query)
        method = self.command
        api, headers = None, None
        try:
            if path == "/health":
                return self._send(200, {"ok": True})
            if path == "/journal" and method == "GET":
                entries = list(state.journal)
                if query.get("api"):
                    entries = [e for e in entries if e["api"] in query["api"]]
                if query.get("since"):
                    entries = [e for e in entries if e["seq"] > int(query["since"][-1])]
                return self._send(200, entries)
            if path == "/journal/reset" and method == "POST":
                state.reset()
                LOG.info("journal and state reset")
                return self._send(200, {"ok": True})
            if path == "/outage" and method == "POST":
                return self._send(200, set_outage(state, raw))
            if path == "/outage" and method == "DELETE":
                with state.lock:
                    state.outages.clear()
                return self._send(200, {"ok": True})
            if path == "/state" and method == "GET":
                with state.lock:
                    return self._send(200, {
                        "slack_messages": [dict(m, channel=c) for (c, _ts), m in state.messages.items()],
                        "pagerduty_alerts": list(state.alerts.values()),
                        "pagerduty_incidents": list(state.incidents.values()),
                        "pagerduty_notes": state.notes, "pagerduty_change_events": state.change_events,
                        "statuspage_pages": {pid: {"incidents": [sp_view(p, i) for i in p["incidents"].values()],
                                                   "components": list(p["components"].values())}
                                             for pid, p in state.pages.items()},
                        "grafana_annotations": state.annotations})
            prefix, api, answer_with = next((r for r in API_ROUTES if path.startswith(r[0])), (None, None, None))
            if api is None:
                return self._send(404, {"message": "no stand-in at %s" % path})
            outage = state.outage(api)
            if outage:
                time.sleep(outage["delay"])
            if outage and outage["status"]:
                status, answer = outage["status"], outage_answer(api, outage["status"])
                headers = {} if outage["retry_after"] is None else {"Retry-After": str(outage["retry_after"])}
                body = request_fields(self, raw)  # journaled, so that a test tells whose request met it
            else:
                status, answer, body = answer_with(state, self, method, path[len(prefix):], query, raw)
        except Answer as answer_now:
            status, answer, body, headers = answer_now.status, answer_now.body, None, answer_now.headers
        except Exception:  # a stand-in bug: answer 500 and keep serving
            LOG.exception("error handling %s %s", method, self.path)
            status, answer, body = 500, {"message": "stand-in error"}, None
        entry = state.record(api, method, self.path, body, status)
        LOG.info("#%d %s %s %s -> %s", entry["seq"], api, method, self.path, status)
        return self._send(status, answer, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address):
        super().__init__(address, Handler)
        self.state = State()


def set_process_name(name):
    try:
        with open("/proc/self/comm", "w") as fh:
            fh.write(name)
    except OSError:
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(prog="api-standin", description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("API_STANDIN_PORT", "18111")))
    ap.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "api-standin.log"),
                    help="log file (default: %(default)s)")
    args = ap.parse_args(argv)
    set_process_name("api-standin")
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        server = Server((args.host, args.port))
    except OSError as exc:
        print("api-standin: cannot listen on %s:%d: %s" % (args.host, args.port, exc),
              file=sys.stderr, flush=True)
        return 1
    host, port = server.server_address[:2]

    def stop(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("listening on http://%s:%d", host, port)
    print("%s api-standin: listening on http://%s:%d (pid %d, log %s)"
          % (iso(ms=False), host, port, os.getpid(), args.log), flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
