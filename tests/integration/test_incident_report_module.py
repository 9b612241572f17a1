"""incident_report as Ansible runs it, writing into a temporary directory: the document and the
invite, a rerun that changes nothing, check mode, a partial incident, and the .ics parsed back."""

from conftest import run_module

INCIDENT = {
    'id': 'inference-gateway-20261123T142300Z', 'service': 'inference-gateway', 'platform': 'compose',
    'started_at': '2026-11-23T14:23:00Z', 'outcome': 'resolved', 'severity': 'critical', 'priority': 'P1',
    'triage': {'error_rate': {'message': 'inference-gateway: 26.70% of 20.00 req/s answer 5xx over 5m',
                              'evaluated_at': 1795443780.0, 'group_by': 'endpoint', 'groups': []},
               'changes': []},
    'diagnosis': {'at': '2026-11-23T14:23:02Z', 'summary': 'bad_deploy: roll back to v1.2.2'},
    'mitigation': {'attempts': [{'attempt': 1, 'decision': 'act', 'description': 'roll back to v1.2.2',
                                 'acted': True, 'at': '2026-11-23T14:31:00Z',
                                 'verify': {'recovered': True, 'message': 'recovered'}}]},
    'verify': {'recovered': True, 'message': 'recovered',
               'samples': [{'time_iso': '2026-11-23T14:32:00Z', 'error_percent': 12.0, 'request_rate': 20.0},
                           {'time_iso': '2026-11-23T14:45:00Z', 'error_percent': 0.3, 'request_rate': 20.0}]},
}
STEM = '2026-11/incident-20261123-1423-high-error-rate'


def report(tmp_path, incident=None, check_mode=False, **kw):
    args = {'incident': incident or INCIDENT, 'directory': str(tmp_path / 'incidents'), '_ansible_diff': True,
            'postmortem': {'organizer': 'On-call <oncall@example.com>',
                           'attendees': ['Incident Commander <ic@example.com>', 'On-call engineer',
                                         'Service owner', 'Observability lead']}}
    args.update(kw)
    return run_module('incident_report', args, check_mode=check_mode)


def parse_ics(data):
    """{name: [(params, value)]} of an iCalendar file, after checking CRLF and unfolding."""
    text = data.decode('utf-8')
    assert text.endswith('\r\n') and '\n' not in text.replace('\r\n', '')
    assert all(len(line.encode('utf-8')) <= 75 for line in text.split('\r\n'))
    properties = {}
    for line in text.replace('\r\n ', '').split('\r\n')[:-1]:
        quoted, split_at = False, None
        for index, char in enumerate(line):  # the value starts at the first colon outside quotes
            quoted = quoted != (char == '"')
            if char == ':' and not quoted:
                split_at = index
                break
        name, _sep, params = line[:split_at].partition(';')
        properties.setdefault(name, []).append((params, line[split_at + 1:]))
    return properties


def test_writes_the_document_and_the_invite_then_a_rerun_changes_nothing(tmp_path):
    first = report(tmp_path, follow_ups=['Add canary deployment with automatic rollback'])
    assert first['changed']
    document = tmp_path / 'incidents' / (STEM + '.md')
    invite = tmp_path / 'incidents' / (STEM + '.ics')
    assert first['path'] == str(document) and first['ics_path'] == str(invite)
    text = document.read_text()
    assert text.startswith('# Incident inference-gateway-20261123T142300Z: high error rate on inference-gateway')
    assert '| Duration | 22 min |' in text and '- [ ] Add canary deployment with automatic rollback' in text
    assert first['postmortem'] == {'start': '2026-11-24T10:00:00Z', 'end': '2026-11-24T11:00:00Z',
                                   'uid': 'inference-gateway-20261123T142300Z-postmortem@sre.runbooks',
                                   'attendees': ['Incident Commander <ic@example.com>', 'On-call engineer',
                                                 'Service owner', 'Observability lead']}
    assert [d['after_header'] for d in first['diff']] == [str(document), str(invite)]
    assert first['diff'][0]['before'] == '' and first['diff'][0]['after'] == text

    before = (document.stat().st_mtime_ns, invite.read_bytes())
    again = report(tmp_path, follow_ups=['Add canary deployment with automatic rollback'])
    assert not again['changed'] and again['diff'] == []
    assert (document.stat().st_mtime_ns, invite.read_bytes()) == before


def test_the_invite_parses_back(tmp_path):
    report(tmp_path)
    ics = parse_ics((tmp_path / 'incidents' / (STEM + '.ics')).read_bytes())
    assert [v for _p, v in ics['BEGIN']] == ['VCALENDAR', 'VEVENT'] and ics['VERSION'] == [('', '2.0')]
    assert ics['UID'] == [('', 'inference-gateway-20261123T142300Z-postmortem@sre.runbooks')]
    assert ics['DTSTAMP'] == [('', '20261123T144500Z')]
    assert ics['DTSTART'] == [('', '20261124T100000Z')] and ics['DTEND'] == [('', '20261124T110000Z')]
    assert ics['SUMMARY'][0][1] == 'Post-mortem: high error rate on inference-gateway (P1\\, 2026-11-23T14:23:00Z)'
    assert 'incident-20261123-1423-high-error-rate.md' in ics['DESCRIPTION'][0][1]
    assert ics['ORGANIZER'] == [('CN="On-call"', 'mailto:oncall@example.com')]
    attendees = ics['ATTENDEE']
    assert len(attendees) == 4 and attendees[0] == (
        'CN="Incident Commander";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE', 'mailto:ic@example.com')
    assert attendees[3][1] == 'urn:sre-runbooks:role:observability-lead'


def test_check_mode_writes_nothing_but_shows_the_document(tmp_path):
    result = report(tmp_path, check_mode=True)
    assert result['changed'] and '## Timeline' in result['diff'][0]['after']
    assert not (tmp_path / 'incidents').exists()


def test_a_run_that_failed_after_triage_still_leaves_its_document(tmp_path):
    partial = {key: INCIDENT[key] for key in ('id', 'service', 'started_at', 'severity', 'triage')}
    result = report(tmp_path, incident=dict(partial, outcome='open'))
    assert result['changed']
    assert result['missing'] == ['error logs', 'resource usage', 'dependency health', 'traces', 'diagnosis',
                                 'verification', 'SLO impact']
    text = (tmp_path / 'incidents' / (STEM + '.md')).read_text()
    assert '| Ended | not known |' in text and '_Not known: the run ended before the diagnosis._' in text
    # A fuller incident later rewrites the same document.
    assert report(tmp_path)['changed']


def test_without_a_start_there_is_no_name(tmp_path):
    result = report(tmp_path, incident={'id': 'x'})
    assert result['failed'] and 'incident.started_at is None' in result['msg']


def png_pixels(data):
    """(width, height, the share of pixels that are not white) of an 8-bit RGB(A) PNG."""
    import struct
    import zlib
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    width, height, depth, color = struct.unpack('>IIBB', data[16:26])
    assert depth == 8 and color in (2, 6)
    chunks, at = [], 8
    while at < len(data):
        length, kind = struct.unpack('>I4s', data[at:at + 8])
        if kind == b'IDAT':
            chunks.append(data[at + 8:at + 8 + length])
        at += 12 + length
    raw, size = zlib.decompress(b''.join(chunks)), 3 if color == 2 else 4
    stride, previous, inked = width * size, bytearray(width * size), 0
    for row in range(height):  # PNG's per-row filters undone, then the pixels counted
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - size] if i >= size else 0
            up, corner = previous[i], previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))[2]
                line[i] = (line[i] + near) & 255
        inked += sum(1 for i in range(0, stride, size) if min(line[i:i + 3]) < 200)
        previous = line
    return width, height, inked / float(width * height)


def test_the_error_rate_graph_is_drawn_beside_the_document_and_renders(tmp_path):
    import subprocess
    times = [1795443600.0 + 10 * i for i in range(31)]
    incident = dict(INCIDENT, error_rate_history={
        'overall': [[t, 20.0 if 60 <= t - times[0] < 180 else 0.0] for t in times],
        'groups': [{'name': '/predict', 'peak_percent': 80.0,
                    'points': [[t, 80.0 if 60 <= t - times[0] < 180 else 0.0] for t in times]}],
        'critical_percent': 5.0, 'warning_percent': 1.0})
    result = report(tmp_path, incident)
    graph = tmp_path / 'incidents' / (STEM + '-error-rate.svg')
    assert result['graph_path'] == str(graph)
    assert '![Error rate during the incident' in (tmp_path / 'incidents' / (STEM + '.md')).read_text()
    png = tmp_path / 'graph.png'
    subprocess.run(['rsvg-convert', str(graph), '-o', str(png)], check=True, timeout=60)
    width, height, inked = png_pixels(png.read_bytes())
    assert (width, height) == (880, 360)
    assert 0.02 < inked < 0.5, inked  # lines, labels and the frame: neither blank nor a filled block
    assert not report(tmp_path, incident)['changed']
    assert report(tmp_path)['graph_path'] is None
