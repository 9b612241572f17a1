# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One HTTP layer for every API the collection speaks to.

Timeouts always, bounded retries with backoff for transient failures, bearer or basic auth,
TLS verification on by default, and errors turned into one sentence that says what failed,
against which URL, and what to check.
"""

from __future__ import annotations

import base64
import html
import json
import re
import socket
import time
from collections.abc import Iterable, Mapping
from email.message import Message
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.urls import open_url

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError

# Status codes worth a second try: the request may well succeed a moment later.
RETRY_STATUSES = frozenset((429, 502, 503, 504))
# An HTML answer is quoted by at most this many characters of its title or text, with the hint.
SNIPPET_CHARS = 120
HTML_HINT = 'this looks like a web page, not the API: check the URL and its path prefix'

ENDPOINT_ARGS = dict(
    url=dict(type='str', required=True),
    bearer_token=dict(type='str', no_log=True),
    username=dict(type='str'),
    password=dict(type='str', no_log=True),
    headers=dict(type='dict', default={}),
    validate_certs=dict(type='bool', default=True),
    ca_path=dict(type='path'),
    timeout=dict(type='float', default=10.0),
    retries=dict(type='int', default=2),
)


# The credentials, where an empty value counts as not given: an AWX credential renders each field
# it injects, given or not, as a string ('' when not given). HttpClient.from_params checks them.
CREDENTIAL_OPTIONS = ('bearer_token', 'username', 'password', 'ca_path')


def endpoint_spec(**own_args: Any) -> dict[str, Any]:
    """The argument spec of a module that calls one endpoint: the endpoint options (doc fragment
    sre.runbooks.endpoint) plus the module's own."""
    spec = dict(ENDPOINT_ARGS)
    spec.update(own_args)
    return dict(argument_spec=spec)


def endpoint_credentials(params: Mapping[str, Any]) -> dict[str, Any]:
    """bearer_token, username, password and ca_path from params, None where not given or empty;
    a bearer token and a username together, or one of username and password alone, are refused."""
    given = {k: params.get(k) or None for k in CREDENTIAL_OPTIONS}
    if given['bearer_token'] and given['username']:
        raise RunbookError('bearer_token and username are mutually exclusive: give a bearer token or a '
                           'username and password, not both')
    if bool(given['username']) != bool(given['password']):
        raise RunbookError('username and password go together: give both (basic auth) or neither')
    return given


class ApiError(RunbookError):
    """A failed call, already phrased for the person who reads it, with the HTTP status and body
    that came back (returned as status_code and response)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message, status_code=status, response=body)
        self.status = status
        self.body = body


class Response:
    """An HTTP answer; `url` is where it came from after redirects, when that is known."""

    def __init__(self, status: int, headers: Mapping[str, str] | Message, body: bytes, url: str | None = None) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    @property
    def content_type(self) -> str:
        return (self.headers.get('Content-Type') or '').split(';')[0].strip().lower()

    def text(self, limit: int | None = None) -> str:
        text = self.body.decode('utf-8', errors='replace')
        return text if limit is None else text[:limit]


class HttpClient:
    """Calls one API endpoint. `name` names the service in error messages (e.g. Prometheus)."""

    def __init__(self, url: str, name: str = 'API', bearer_token: str | None = None, username: str | None = None,
                 password: str | None = None, headers: Mapping[str, str] | None = None, validate_certs: bool = True,
                 ca_path: str | None = None, timeout: float = 10.0, retries: int = 2, backoff: float = 0.5,
                 unix_socket: str | None = None, retry_statuses: Iterable[int] = RETRY_STATUSES,
                 max_retry_after: float | None = None) -> None:
        """retry_statuses: the HTTP statuses tried again. max_retry_after: when set, a 429 that
        carries Retry-After (seconds) is tried again after that wait, or, when it asks for longer
        than max_retry_after seconds, returned at once; without it, backoff applies."""
        self.base_url = url.rstrip('/')
        self.name = name
        self.headers = dict(headers or {})
        if bearer_token:
            self.headers['Authorization'] = 'Bearer %s' % bearer_token
        elif username is not None:
            creds = ('%s:%s' % (username, password or '')).encode('utf-8')
            self.headers['Authorization'] = 'Basic %s' % base64.b64encode(creds).decode('ascii')
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.unix_socket = unix_socket
        self.retry_statuses = frozenset(retry_statuses)
        self.max_retry_after = max_retry_after

    @classmethod
    def from_params(cls, params: Mapping[str, Any], name: str) -> HttpClient:
        if not re.match(r'https?://', params['url'] or ''):
            raise RunbookError('%s: url %r is not an http:// or https:// URL: give its scheme, e.g. http://%s'
                               % (name, params['url'], params['url'] or 'host:port'))
        try:
            credentials = endpoint_credentials(params)
        except RunbookError as err:
            raise RunbookError('%s: %s' % (name, err))
        return cls(params['url'], name=name, headers=params.get('headers'),
                   validate_certs=params.get('validate_certs', True), timeout=params.get('timeout', 10.0),
                   retries=params.get('retries', 2), max_retry_after=params.get('max_retry_after'), **credentials)

    def url_for(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        url = self.base_url + path
        if query:
            url += ('&' if '?' in url else '?') + urlencode(query)
        return url

    def request(self, method: str, path: str, query: Mapping[str, Any] | None = None, form: Mapping[str, Any] | None = None,
                json_body: Any = None, headers: Mapping[str, str] | None = None, timeout: float | None = None) -> Response:
        """Sends one request; returns a Response for every HTTP status (errors are data too).

        Raises ApiError only when no HTTP answer came back (refused, DNS, TLS, timeout), after
        retries, or when the answer kept being a retryable status.
        """
        url = self.url_for(path, query)
        all_headers = dict(self.headers)
        all_headers.update(headers or {})
        data = None
        if form is not None:
            data = urlencode(form)
            all_headers.setdefault('Content-Type', 'application/x-www-form-urlencoded')
        elif json_body is not None:
            data = json.dumps(json_body)
            all_headers.setdefault('Content-Type', 'application/json')
        timeout = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            delay = self.backoff * (2 ** attempt)
            try:
                response = self._send(method, url, data, all_headers, timeout)
            except ApiError:
                if attempt >= self.retries:
                    raise
            else:
                if response.status not in self.retry_statuses or attempt >= self.retries:
                    return response
                asked = self._retry_after(response)
                if asked is not None and self.max_retry_after is not None:  # asked is None without it
                    if asked > self.max_retry_after:
                        return response
                    delay = asked
            attempt += 1
            time.sleep(delay)

    def _retry_after(self, response: Response) -> float | None:
        """Seconds a 429 asks to wait (Retry-After), when honoured; None otherwise."""
        if response.status != 429 or self.max_retry_after is None:
            return None
        try:
            return max(0.0, float(response.headers.get('Retry-After', '')))
        except (TypeError, ValueError):
            return None

    def _send(self, method: str, url: str, data: str | None, headers: dict[str, str], timeout: float) -> Response:
        try:
            handle = open_url(url, data=data, headers=headers, method=method,
                              validate_certs=self.validate_certs, ca_path=self.ca_path,
                              timeout=timeout, follow_redirects='safe',
                              unix_socket=self.unix_socket, use_proxy=self.unix_socket is None)
            with handle:
                return Response(handle.getcode(), handle.headers, handle.read(), handle.geturl())
        except HTTPError as err:
            body = err.read() if err.fp is not None else b''
            return Response(err.code, err.headers or {}, body)
        except (socket.timeout, TimeoutError):
            raise ApiError('%s at %s did not answer within %ss: check that it is up and not '
                           'overloaded, or raise timeout' % (self.name, self._where(url), timeout))
        except URLError as err:
            reason = getattr(err, 'reason', err)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise ApiError('%s at %s did not answer within %ss: check that it is up and '
                               'not overloaded, or raise timeout'
                               % (self.name, self._where(url), timeout))
            raise ApiError('cannot reach %s at %s: %s (timeout %ss): check the URL and that the '
                           'server is up' % (self.name, self._where(url), reason, timeout))
        except (ConnectionError, OSError, ValueError) as err:
            raise ApiError('cannot reach %s at %s: %s (timeout %ss): check the URL and that the '
                           'server is up' % (self.name, self._where(url), err, timeout))

    def _where(self, url: str) -> str:
        url = url.split('?')[0]
        return url if self.unix_socket is None else '%s (socket %s)' % (url, self.unix_socket)

    def get_json(self, path: str, query: Mapping[str, Any] | None = None, method: str = 'GET',
                 form: Mapping[str, Any] | None = None, json_body: Any = None, timeout: float | None = None) -> Any:
        """Requests a JSON document; ApiError for anything that is not a 2xx JSON answer."""
        response = self.request(method, path, query=query, form=form, json_body=json_body,
                                timeout=timeout)
        return self.expect_json(response, self.url_for(path))

    def expect_json(self, response: Response, url: str) -> Any:
        """The JSON payload of a 2xx answer, else ApiError saying what came back instead."""
        if response.status in (401, 403):
            raise ApiError('%s at %s refused the request with HTTP %s: check the credentials '
                           '(bearer_token or username/password) and their permissions'
                           % (self.name, url, response.status), response.status, body_text(response, 500))
        payload = decode_json(response)
        if not 200 <= response.status < 300:
            said = summarise_body(payload, response)
            if response.status == 404 and HTML_HINT not in said:
                said += ': check the URL and its path prefix'
            raise ApiError('%s at %s answered HTTP %s: %s' % (self.name, url, response.status, said),
                           response.status, payload)
        if payload is None:
            landed = (response.url or url).split('?')[0]
            what = '%s at %s answered HTTP %s%s with %s, not JSON' % (
                self.name, url, response.status, ' after a redirect to %s' % landed if landed != url.split('?')[0] else '',
                response.content_type or 'no content type')
            if is_html(response):
                raise ApiError('%s (%s): %s (is this the API URL, not a UI, proxy or login page?)'
                               % (what, quote_page(response), HTML_HINT), response.status)
            raise ApiError('%s: is this the API URL (not a UI, proxy or login page)? Body starts: %r'
                           % (what, response.text(SNIPPET_CHARS)), response.status)
        return payload


def decode_json(response: Response) -> Any:
    """The JSON body of a response, or None when it is not JSON."""
    if not response.body:
        return None
    try:
        return json.loads(response.body.decode('utf-8'))
    except ValueError:
        return None


def summarise_body(payload: Any, response: Response) -> str:
    """What an error answer said: its error field, its JSON, or its text (see body_text)."""
    if isinstance(payload, dict):
        for key in ('error', 'message', 'msg', 'detail'):
            if payload.get(key):
                return str(payload[key])
        return json.dumps(payload)[:300]
    return body_text(response)


def body_text(response: Response, limit: int = 300) -> str:
    """A body as an error quotes it: a web page by its title or first words, with HTML_HINT;
    other text by its first `limit` characters."""
    if is_html(response):
        return '%s: %s' % (quote_page(response), HTML_HINT)
    return response.text(limit) or '(empty body)'


def is_html(response: Response) -> bool:
    """Whether the answer is a web page: markup, by how it starts or with an HTML content type
    (Slack's webhooks answer their plain error names as text/html)."""
    start = response.body[:1024].lstrip().lower()
    if start.startswith((b'<!doctype html', b'<html')) or b'<head' in start or b'<body' in start:
        return True
    return response.content_type in ('text/html', 'application/xhtml+xml') and re.search(rb'<[a-z!/]', start) is not None


def quote_page(response: Response) -> str:
    """A web page in at most SNIPPET_CHARS characters, quoted: its title, or else its text;
    tags, scripts, styles and comments dropped, entities decoded, white space collapsed."""
    page = response.text()
    title = re.search(r'<title\b[^>]*>(.*?)</title\s*>', page, re.I | re.S)
    text = page_text(title.group(1)) if title else ''
    text = text or page_text(page)
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS - 3].rstrip() + '...'
    return '"%s"' % text if text else 'an empty web page'


def page_text(markup: str) -> str:
    markup = re.sub(r'<(script|style)\b.*?(</\1\s*>|$)', ' ', markup, flags=re.I | re.S)
    markup = re.sub(r'<!--.*?(-->|$)', ' ', markup, flags=re.S)
    markup = re.sub(r'<[^>]*>?', ' ', markup)
    return ' '.join(html.unescape(markup).split())
