"""grafana_annotation as Ansible runs it, against a small HTTP server that answers as Grafana's
documented Annotations HTTP API does (Grafana itself cannot be installed here), under a sub path
(/grafana) as behind a proxy: `Authorization: Bearer <service account token>` or basic auth;
GET /api/annotations?from=&to=&tags=&tags=&matchAny=false&limit=&type=annotation[&dashboardUID=]
lists the annotations overlapping [from, to] (epoch ms) that carry every tag, as a JSON array
whose point annotations have timeEnd equal to time; POST /api/annotations answers 200
{"message": "Annotation added", "id": N}; PATCH /api/annotations/{id} changes the text, tags,
time and timeEnd it is given and answers 200 {"message": "Annotation patched"}. Tags are stored
trimmed, as `key:value` at most. Errors: 401 {"message": "Invalid API key", ...} for a bad token,
403 {"message": "You'll need additional permissions ... Permissions needed: annotations:create"}
when the account's role lacks the action, 400 {"message": "Invalid dashboard UID in annotation
request"} to a search on an unknown dashboard UID, and 404 {"message": "Dashboard not found"}."""

import base64
import json
import time
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import LocalServer, Route, run_module
from test_api_errors import free_port

TOKEN = 'glsa_s3cr3tGrafanaServiceAccountT0ken_1a2b3c4d'
PASSWORD = 'basic-pa55word-grafana'
PREFIX = '/grafana'
DASHBOARDS = {'sre-runbooks-high-error-rate': 468}
AT = 1795446000  # 2026-11-23T15:00:00Z
TAGS = ['sre.runbooks', 'incident:INC-20261123-1423', 'service:inference-gateway', 'rollback']
TEXT = 'Rolled back inference-gateway from gw:v2 to gw:v1'


class FakeGrafana:
    """One organization's annotations, kept as Grafana keeps them. `permissions`: the RBAC actions
    of the token's service account."""

    def __init__(self, server):
        self.server = server
        self.annotations = {}
        self.permissions = {'annotations:read', 'annotations:create', 'annotations:write'}
        server.routes[PREFIX + '/api/annotations'] = self.answer

    def add(self, time_ms, tags, text, time_end=None, dashboard_uid=None, panel_id=0):
        number = len(self.annotations) + 1
        self.annotations[number] = {
            'id': number, 'alertId': 0, 'dashboardId': DASHBOARDS.get(dashboard_uid, 0),
            'dashboardUID': dashboard_uid, 'panelId': panel_id, 'userId': 7, 'newState': '', 'prevState': '',
            'created': 1795446001000, 'updated': 1795446001000, 'time': time_ms, 'timeEnd': time_end or time_ms,
            'text': text, 'tags': stored_tags(tags), 'login': 'sa-runbook', 'email': '', 'avatarUrl': '', 'data': {}}
        self.server.routes[PREFIX + '/api/annotations/%d' % number] = self.answer
        return self.annotations[number]

    def answer(self, handler):
        request = self.server.requests[-1]
        if request['headers'].get('authorization') not in (
                'Bearer ' + TOKEN, 'Basic ' + base64.b64encode(b'admin:' + PASSWORD.encode()).decode()):
            return Route(401, {'extra': None, 'message': 'Invalid API key', 'messageId': 'api-keys.invalid',
                               'statusCode': 401, 'traceID': ''})
        needed = {'GET': 'annotations:read', 'POST': 'annotations:create', 'PATCH': 'annotations:write'}[handler.command]
        if needed not in self.permissions:
            return Route(403, {'accessErrorId': 'ACE3104889351', 'title': 'Access denied', 'message':
                               "You'll need additional permissions to perform this action. Permissions needed: %s" % needed})
        url = urlparse(request['path'])
        return getattr(self, handler.command.lower())(url, json.loads(request['body'] or b'null'))

    def get(self, url, _body):
        query = parse_qs(url.query)
        uid = query.get('dashboardUID', [None])[0]
        if uid is not None and uid not in DASHBOARDS:
            return Route(400, {'message': 'Invalid dashboard UID in annotation request'})
        start, end = int(query['from'][0]), int(query['to'][0])
        wanted = set(stored_tags(query.get('tags', [])))
        found = [a for a in sorted(self.annotations.values(), key=lambda a: (-a['timeEnd'], -a['time']))
                 if a['time'] <= end and a['timeEnd'] >= start and wanted <= set(a['tags'])
                 and (uid is None or a['dashboardUID'] == uid)]
        return Route(200, found[:int(query.get('limit', ['100'])[0])])

    def post(self, _url, body):
        uid = body.get('dashboardUID')
        if uid and uid not in DASHBOARDS:
            return Route(404, {'message': 'Dashboard not found'})
        if not body.get('text'):
            return Route(400, {'message': 'Failed to save annotation'})
        added = self.add(body['time'], body.get('tags') or [], body['text'], body.get('timeEnd'), uid, body.get('panelId', 0))
        return Route(200, {'message': 'Annotation added', 'id': added['id']})

    def patch(self, url, body):
        annotation = self.annotations.get(int(url.path.rsplit('/', 1)[1]))
        if annotation is None:
            return Route(404, {'message': 'Could not find annotation to update'})
        if body.get('tags') is not None:
            annotation['tags'] = stored_tags(body['tags'])
        annotation['text'] = body.get('text') or annotation['text']
        annotation['time'] = body.get('time') or annotation['time']
        annotation['timeEnd'] = body.get('timeEnd') or annotation['timeEnd']
        return Route(200, {'message': 'Annotation patched'})


def stored_tags(tags):
    """As Grafana's tag.ParseTagPairs and JoinTagPairs keep them."""
    kept = []
    for tag in tags:
        parts = [part.strip(' ') for part in tag.split(':')]
        joined = parts[0] + (':' + parts[1] if len(parts) > 1 and parts[1] else '')
        if parts[0] and joined not in kept:
            kept.append(joined)
    return kept


@pytest.fixture(scope='module')
def one_server():
    """One server for the module's tests: stopping one waits out half a second of its poll."""
    srv = LocalServer()
    yield srv
    srv.close()


@pytest.fixture
def server(one_server):
    one_server.routes.clear()
    one_server.requests.clear()
    return one_server


@pytest.fixture
def grafana(server):
    return FakeGrafana(server)


def annotate(server, check_mode=False, **kw):
    args = {'url': server.url + PREFIX, 'token': TOKEN, 'time': str(AT), 'tags': TAGS, 'text': TEXT,
            'retries': 0, 'timeout': 5, '_ansible_diff': True}
    args.update(kw)
    return run_module('grafana_annotation', args, check_mode=check_mode)


def writes(server):
    return [r for r in server.requests if r['method'] in ('POST', 'PATCH')]


def one_clear_line(result, *secrets):
    assert result['failed'] and '\n' not in result['msg'] and 'Traceback' not in json.dumps(result)
    for secret in secrets or (TOKEN,):
        assert secret not in json.dumps(result)


def test_creates_then_a_second_run_changes_nothing(server, grafana):
    first = annotate(server)
    assert first['changed'] and first['created']
    assert [r['method'] for r in server.requests] == ['GET', 'POST']
    search = urlparse(server.requests[0]['path'])
    assert search.path == PREFIX + '/api/annotations'
    assert parse_qs(search.query) == {'from': [str(AT * 1000 - 1000)], 'to': [str(AT * 1000 + 1000)], 'tags': TAGS,
                                      'matchAny': ['false'], 'limit': ['100'], 'type': ['annotation']}
    post = writes(server)[0]
    assert post['path'] == PREFIX + '/api/annotations'
    assert json.loads(post['body']) == {'time': AT * 1000, 'tags': TAGS, 'text': TEXT}
    assert all(r['headers']['authorization'] == 'Bearer ' + TOKEN for r in server.requests)
    assert first['annotation'] == {'id': 1, 'dashboard_uid': None, 'panel_id': None, 'time': AT * 1000,
                                   'time_end': None, 'tags': TAGS, 'text': TEXT}
    assert first['request'] == {'method': 'POST', 'url': server.url + PREFIX + '/api/annotations',
                                'body': json.loads(post['body'])}
    assert first['diff'] == {'before': {}, 'after': first['annotation']}

    again = annotate(server)
    assert not again['changed'] and not again['created'] and again['request'] is None and 'diff' not in again
    assert again['annotation'] == first['annotation']
    assert len(writes(server)) == 1 and len(grafana.annotations) == 1
    assert TOKEN not in json.dumps(first) + json.dumps(again)


def test_a_changed_text_patches_the_same_annotation(server, grafana):
    annotate(server, time='2026-11-23T15:00:00Z')
    changed = annotate(server, time='2026-11-23T15:00:00Z', text=TEXT + '; the error rate is back under 1%')
    assert changed['changed'] and not changed['created']
    patch = writes(server)[-1]
    assert patch['method'] == 'PATCH' and patch['path'] == PREFIX + '/api/annotations/1'
    assert json.loads(patch['body']) == {'text': TEXT + '; the error rate is back under 1%'}
    assert changed['diff']['before']['text'] == TEXT
    assert changed['diff']['after'] == dict(changed['diff']['before'], text=TEXT + '; the error rate is back under 1%')
    assert changed['annotation']['id'] == 1 and len(grafana.annotations) == 1
    assert grafana.annotations[1]['text'] == TEXT + '; the error rate is back under 1%'


def test_a_region_is_sent_with_its_end_and_its_end_patched(server, grafana):
    region = annotate(server, time='2026-11-23T14:23:00Z', time_end='2026-11-23T14:51:30.250Z', tags=['sre.runbooks', 'incident'])
    start, end = 1795443780000, 1795445490250
    assert json.loads(writes(server)[0]['body']) == {'time': start, 'timeEnd': end, 'tags': ['sre.runbooks', 'incident'],
                                                     'text': TEXT}
    assert region['annotation']['time'] == start and region['annotation']['time_end'] == end
    assert not annotate(server, time=str(start / 1000), time_end=str(end / 1000), tags=['sre.runbooks', 'incident'])['changed']

    longer = annotate(server, time='2026-11-23T14:23:00Z', time_end='2026-11-23T15:00:00Z', tags=['sre.runbooks', 'incident'])
    assert longer['changed'] and json.loads(writes(server)[-1]['body']) == {'timeEnd': AT * 1000}
    assert longer['diff']['before']['time_end'] == end and longer['diff']['after']['time_end'] == AT * 1000
    # Asked as a moment again: its end back on its start (Grafana patches only a timeEnd above 0).
    point = annotate(server, time='2026-11-23T14:23:00Z', tags=['sre.runbooks', 'incident'])
    assert json.loads(writes(server)[-1]['body']) == {'timeEnd': start} and point['annotation']['time_end'] is None
    assert grafana.annotations[1]['timeEnd'] == start and len(grafana.annotations) == 1


def test_a_panel_annotation_is_not_an_organization_one_nor_one_of_other_tags(server, grafana):
    grafana.add(AT * 1000, TAGS, TEXT)  # the same tags and time, of the organization
    grafana.add(AT * 1000, TAGS + ['extra'], TEXT, dashboard_uid='sre-runbooks-high-error-rate', panel_id=1)
    result = annotate(server, dashboard_uid='sre-runbooks-high-error-rate', panel_id=1)
    assert result['created'] and result['annotation']['id'] == 3
    assert parse_qs(urlparse(server.requests[0]['path']).query)['dashboardUID'] == ['sre-runbooks-high-error-rate']
    assert json.loads(writes(server)[0]['body']) == {'dashboardUID': 'sre-runbooks-high-error-rate', 'panelId': 1,
                                                     'time': AT * 1000, 'tags': TAGS, 'text': TEXT}
    assert result['annotation']['dashboard_uid'] == 'sre-runbooks-high-error-rate' and result['annotation']['panel_id'] == 1
    assert not annotate(server, dashboard_uid='sre-runbooks-high-error-rate', panel_id=1)['changed']
    # The organization annotation is still the one without a dashboard.
    assert annotate(server)['annotation']['id'] == 1 and len(writes(server)) == 1


def test_tags_are_sent_and_compared_as_grafana_stores_them(server, grafana):
    messy = [' sre.runbooks ', 'service : inference-gateway', 'service:inference-gateway', 'rollback']
    first = annotate(server, tags=messy)
    assert json.loads(writes(server)[0]['body'])['tags'] == ['sre.runbooks', 'service:inference-gateway', 'rollback']
    assert not annotate(server, tags=['rollback', 'sre.runbooks', 'service:inference-gateway'])['changed']
    assert first['annotation']['tags'] == grafana.annotations[1]['tags'] and len(writes(server)) == 1


def test_check_mode_reads_but_sends_nothing(server, grafana):
    created = annotate(server, check_mode=True)
    assert created['changed'] and created['created'] and created['annotation']['id'] is None
    assert created['request']['method'] == 'POST' and created['request']['body']['time'] == AT * 1000
    grafana.add(AT * 1000, TAGS, 'first words')
    patched = annotate(server, check_mode=True)
    assert patched['changed'] and patched['request'] == {
        'method': 'PATCH', 'url': server.url + PREFIX + '/api/annotations/1', 'body': {'text': TEXT}}
    assert patched['diff']['before']['text'] == 'first words' and patched['annotation']['text'] == TEXT
    assert writes(server) == [] and grafana.annotations[1]['text'] == 'first words'


def test_basic_auth_is_sent_and_the_password_never_shown(server, grafana):
    result = annotate(server, token=None, username='admin', password=PASSWORD)
    assert result['created']
    assert server.requests[-1]['headers']['authorization'] == 'Basic ' + base64.b64encode(b'admin:' + PASSWORD.encode()).decode()
    refused = annotate(server, token=None, username='admin', password='wrong-' + PASSWORD)
    one_clear_line(refused, PASSWORD)


def test_a_bad_token_is_a_401_that_names_the_token(server, grafana):
    result = annotate(server, token='glsa_wrong_' + TOKEN)
    one_clear_line(result, TOKEN)
    assert result['msg'] == ('Grafana answered HTTP 401 to GET %s/grafana/api/annotations: Invalid API key: check '
                             'bearer_token (token): a service account token, sent as "Authorization: Bearer <token>", '
                             'or username and password' % server.url)
    assert result['status_code'] == 401 and writes(server) == []


def test_a_missing_permission_is_named(server, grafana):
    grafana.permissions.discard('annotations:create')
    result = annotate(server)
    one_clear_line(result)
    assert result['msg'].startswith('Grafana answered HTTP 403 to POST %s/grafana/api/annotations: ' % server.url)
    assert result['msg'].endswith('Permissions needed: annotations:create: give the service account annotations:create '
                                  '(the Editor role has it) on the dashboard or the organization')
    assert grafana.annotations == {}


def test_an_unknown_dashboard_names_dashboard_uid(server, grafana):
    searched = annotate(server, dashboard_uid='no-such-dashboard')
    one_clear_line(searched)
    assert 'HTTP 400 to GET' in searched['msg'] and 'Invalid dashboard UID in annotation request' in searched['msg']
    assert searched['msg'].endswith("check dashboard_uid: the UID in the dashboard's URL (/d/<uid>/...)")
    # A Grafana that lets the search through refuses the POST with 404.
    server.routes[PREFIX + '/api/annotations'] = lambda handler: (
        Route(200, []) if handler.command == 'GET' else Route(404, {'message': 'Dashboard not found'}))
    posted = annotate(server, dashboard_uid='no-such-dashboard')
    one_clear_line(posted)
    assert 'HTTP 404 to POST' in posted['msg'] and 'Dashboard not found: check dashboard_uid' in posted['msg']


def test_an_unreachable_grafana_names_its_url(server):
    url = 'http://127.0.0.1:%d' % free_port()
    result = annotate(server, url=url)
    one_clear_line(result)
    assert result['msg'].startswith('cannot reach Grafana at %s/api/annotations: ' % url)
    assert 'Connection refused' in result['msg'] and result['msg'].endswith('check the URL and that the server is up')


def test_a_429_is_tried_again_after_its_retry_after(server, grafana):
    answers = [Route(429, {'message': 'Too many requests'}, {'Retry-After': '1'})]
    server.routes[PREFIX + '/api/annotations'] = lambda handler: answers.pop(0) if answers else grafana.answer(handler)
    started = time.monotonic()
    result = annotate(server, retries=1)
    assert result['created'] and time.monotonic() - started >= 1.0
    assert [r['method'] for r in server.requests] == ['GET', 'GET', 'POST']


@pytest.mark.parametrize('options, said', [
    ({'time_end': str(AT - 60)}, 'invalid option: time_end (%d) is before time (%d)' % (AT - 60, AT)),
    ({'time': 'yesterday'}, "invalid option: 'yesterday' is not a time"),
    ({'tags': ['image:gw:v2']}, "invalid option: tag 'image:gw:v2': give a word or key:value with one colon"),
    ({'tags': []}, 'invalid option: tags is empty'),
    ({'text': ' '}, 'invalid option: text is empty'),
    ({'panel_id': 1}, "missing parameter(s) required by 'panel_id': dashboard_uid"),
    ({'username': 'admin'}, 'Grafana: bearer_token and username are mutually exclusive'),
])
def test_options_are_checked_before_any_call(server, grafana, options, said):
    result = annotate(server, **options)
    one_clear_line(result)
    assert result['msg'].startswith(said) and server.requests == []
