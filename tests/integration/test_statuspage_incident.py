"""statuspage_incident as Ansible runs it, against a small HTTP server that answers as the
documented Atlassian Statuspage REST API v1 does: `Authorization: OAuth <key>`, incidents under
/v1/pages/{page_id}/incidents (GET .../unresolved lists open ones as a JSON array, POST creates,
GET and PATCH .../{incident_id} read and update, the body wrapped in {"incident": {...}}), and the
error shape {"message": "..."} with 401 for a bad key, 404 for an unknown page or incident and 422
for a refused value. Statuspage itself cannot be reached from here."""

import json

import pytest

from conftest import Route, run_module

KEY = 'sp-secret-key-123'
PAGE = 'pg7x2k'
BASE = '/v1/pages/%s/incidents' % PAGE
COMPONENT = 'cmp8ab3'


class FakeStatuspage:
    """One page's incidents, kept as Statuspage keeps them: a status, components with their
    status, and the updates, newest first."""

    def __init__(self, server):
        self.server = server
        self.incidents = {}
        server.routes[BASE] = self.answer
        server.routes[BASE + '/unresolved'] = self.answer

    def add(self, name, status='investigating', body='first', components=None):
        number = len(self.incidents) + 1
        incident = {'id': 'inc%d' % number, 'name': name, 'status': status, 'impact_override': None,
                    'shortlink': 'https://stspg.io/%d' % number, 'page_id': PAGE,
                    'updated_at': '2026-11-23T14:25:00Z',
                    'components': [{'id': cid, 'status': s} for cid, s in (components or {}).items()],
                    'incident_updates': [{'status': status, 'body': body, 'created_at': '2026-11-23T14:25:00Z'}]}
        self.incidents[incident['id']] = incident
        self.server.routes[BASE + '/' + incident['id']] = self.answer
        return incident

    def answer(self, handler):
        request = self.server.requests[-1]
        if request['headers'].get('authorization') != 'OAuth ' + KEY:
            return Route(401, {'message': 'Could not authenticate'})
        path = request['path'].split('?')[0]
        if path == BASE + '/unresolved':
            return Route(200, [i for i in self.incidents.values() if i['status'] != 'resolved'])
        fields = json.loads(request['body'] or b'{}').get('incident', {})
        if fields.get('status', 'investigating') not in ('investigating', 'identified', 'monitoring', 'resolved'):
            return Route(422, {'message': 'Status is not included in the list'})
        if handler.command == 'POST':
            incident = self.add(fields['name'], fields.get('status'), fields.get('body'))
        else:
            incident = self.incidents[path.rsplit('/', 1)[1]]
        if handler.command in ('POST', 'PATCH'):
            self.apply(incident, fields)
        return Route(201 if handler.command == 'POST' else 200, incident)

    @staticmethod
    def apply(incident, fields):
        incident['status'] = fields.get('status', incident['status'])
        incident['impact_override'] = fields.get('impact_override', incident['impact_override'])
        states = {c['id']: c['status'] for c in incident['components']}
        states.update(fields.get('components') or {})
        incident['components'] = [{'id': cid, 'status': s} for cid, s in states.items()]
        incident['updated_at'] = '2026-11-23T14:%02d:00Z' % (26 + len(incident['incident_updates']))
        incident['incident_updates'].insert(0, {'status': incident['status'], 'body': fields.get('body') or '',
                                                'created_at': incident['updated_at']})


@pytest.fixture
def page(server):
    return FakeStatuspage(server)


def incident(server, check_mode=False, **kw):
    args = {'api_key': KEY, 'page_id': PAGE, 'api_url': server.url + '/v1', 'retries': 0, 'timeout': 5,
            '_ansible_diff': True}
    args.update(kw)
    return run_module('statuspage_incident', args, check_mode=check_mode)


def writes(server):
    return [r for r in server.requests if r['method'] in ('POST', 'PATCH')]


OPEN = dict(name='Elevated error rates on the ML inference API', status='investigating',
            body="We're investigating elevated error rates on the ML inference API.",
            components={COMPONENT: 'partial_outage'})


def test_creates_then_a_second_run_changes_nothing(server, page):
    first = incident(server, **OPEN)
    assert first['changed'] and first['created']
    assert first['incident']['id'] == 'inc1' and first['incident']['status'] == 'investigating'
    assert first['incident']['shortlink'] == 'https://stspg.io/1'
    sent = json.loads(writes(server)[0]['body'])
    assert writes(server)[0]['path'] == BASE
    assert sent == {'incident': {'name': OPEN['name'], 'status': 'investigating', 'body': OPEN['body'],
                                 'components': {COMPONENT: 'partial_outage'}, 'component_ids': [COMPONENT],
                                 'deliver_notifications': True}}
    assert first['request']['body'] == sent
    assert server.requests[0]['headers']['authorization'] == 'OAuth ' + KEY

    again = incident(server, **OPEN)
    assert not again['changed'] and not again['created'] and again['request'] is None
    assert again['incident']['id'] == 'inc1' and len(writes(server)) == 1
    assert KEY not in json.dumps(first) and KEY not in json.dumps(again)


def test_through_the_stages_by_name(server, page):
    page.add(OPEN['name'], body=OPEN['body'], components={COMPONENT: 'partial_outage'})
    page.add('Another incident')
    identified = incident(server, name=OPEN['name'], status='identified', body='Bad deploy v1.2.3; rolling back.')
    assert identified['changed'] and not identified['created']
    assert writes(server)[-1]['method'] == 'PATCH' and writes(server)[-1]['path'] == BASE + '/inc1'
    assert json.loads(writes(server)[-1]['body']) == {'incident': {
        'status': 'identified', 'body': 'Bad deploy v1.2.3; rolling back.', 'deliver_notifications': True}}
    assert identified['diff']['before']['status'] == 'investigating'
    assert identified['diff']['after']['status'] == 'identified'

    resolved = incident(server, name=OPEN['name'], status='resolved', body='Fixed.',
                        components={COMPONENT: 'operational'}, deliver_notifications=False)
    assert resolved['changed'] and resolved['incident']['status'] == 'resolved'
    assert json.loads(writes(server)[-1]['body'])['incident'] == {
        'status': 'resolved', 'body': 'Fixed.', 'components': {COMPONENT: 'operational'},
        'component_ids': [COMPONENT], 'deliver_notifications': False}
    # Resolved is no longer unresolved: resolving again sends nothing and creates nothing.
    again = incident(server, name=OPEN['name'], status='resolved', body='Fixed.')
    assert not again['changed'] and again['incident'] is None and len(writes(server)) == 2
    assert 'nothing to resolve' in json.dumps(again['warnings'])


def test_only_a_component_change_by_id(server, page):
    page.add(OPEN['name'], status='monitoring', body='Watching.',
             components={COMPONENT: 'degraded_performance', 'cmp2': 'major_outage'})
    result = incident(server, incident_id='inc1', status='monitoring', body='Watching.',
                      components={COMPONENT: 'operational', 'cmp2': 'major_outage'})
    assert result['changed']
    assert json.loads(writes(server)[-1]['body'])['incident'] == {
        'components': {COMPONENT: 'operational'}, 'component_ids': ['cmp2', COMPONENT],
        'deliver_notifications': True}


def test_check_mode_reads_but_sends_nothing(server, page):
    created = incident(server, check_mode=True, **OPEN)
    assert created['changed'] and created['created'] and created['incident']['id'] is None
    assert created['request']['method'] == 'POST' and created['diff']['before'] == {}
    page.add(OPEN['name'], body=OPEN['body'])
    updated = incident(server, check_mode=True, name=OPEN['name'], status='monitoring')
    assert updated['changed'] and updated['incident']['status'] == 'monitoring'
    assert updated['request']['method'] == 'PATCH'
    assert writes(server) == [] and {r['method'] for r in server.requests} == {'GET'}
    assert page.incidents['inc1']['status'] == 'investigating'


def test_a_bad_key_is_a_401_that_names_the_key(server, page):
    result = incident(server, api_key='wrong-key', **OPEN)
    assert result['failed']
    assert 'HTTP 401' in result['msg'] and 'Could not authenticate' in result['msg']
    assert 'check api_key' in result['msg'] and 'wrong-key' not in json.dumps(result)


def test_an_unknown_incident_is_a_404(server, page):
    server.routes[BASE + '/nope'] = Route(404, {'message': 'The requested resource could not be found.'})
    result = incident(server, incident_id='nope', status='resolved')
    assert result['failed'] and 'HTTP 404' in result['msg'] and 'check page_id and incident_id' in result['msg']


def test_a_refused_value_is_a_422(server, page):
    page.add(OPEN['name'])
    server.routes[BASE + '/inc1'] = Route(422, {'message': 'Components is invalid'})
    result = incident(server, incident_id='inc1', components={COMPONENT: 'major_outage'})
    assert result['failed'] and 'HTTP 422' in result['msg'] and 'Components is invalid' in result['msg']


def test_options_are_checked_before_any_write(server, page):
    result = incident(server, name='x', components={COMPONENT: 'down'})
    assert result['failed'] and "invalid component statuses (cmp8ab3: down)" in result['msg']
    assert 'one of' in incident(server, name='x', status='fixed')['msg']
    assert 'one of the following is required' in incident(server)['msg']
    assert writes(server) == []
