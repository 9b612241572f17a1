"""Deploy history from Docker events, git log parsing, and changes placed against the onset."""

from ansible_collections.sre.runbooks.plugins.module_utils.analysis.changes import deploys, parse_git_log, previous_image, timeline


def event(action, image, t, cid):
    attributes = {'image': image, 'name': 'sre-demo_inference-gateway_1'}
    return {'Type': 'container', 'Action': action, 'id': cid, 'from': image, 'time': int(t),
            'timeNano': int(t * 1e9), 'Actor': {'ID': cid, 'Attributes': attributes}}


def create(image, t, cid=None):
    return event('create', image, t, cid or 'c%d' % t)


def test_deploys_read_the_image_they_replaced():
    history = deploys([create('gw:v1.2.3', 200), create('gw:v1.2.2', 100), create('gw:v1.2.3', 300)])
    assert [(d['time'], d['image'], d['previous_image']) for d in history] == [
        (100, 'gw:v1.2.2', None), (200, 'gw:v1.2.3', 'gw:v1.2.2'), (300, 'gw:v1.2.3', 'gw:v1.2.3')]
    assert history[1]['summary'] == 'image gw:v1.2.2 -> gw:v1.2.3'
    assert history[2]['summary'] == 'container recreated with gw:v1.2.3'
    assert history[0]['summary'] == 'container created with gw:v1.2.2'
    assert previous_image('gw:v1.2.3', history) == 'gw:v1.2.2'


def test_removal_of_the_old_container_names_the_replaced_image():
    # The engine forgot the old container's creation; compose's recreate removed it just after
    # creating the new one, and that removal is still in the event history.
    history = deploys([create('gw:v1.2.3', 200, 'new'), event('destroy', 'gw:v1.2.2', 201, 'old')])
    assert [(d['image'], d['previous_image']) for d in history] == [('gw:v1.2.3', 'gw:v1.2.2')]
    # A rollback: the removal of the bad container names what the rollback replaced.
    history = deploys([create('gw:v1.2.3', 200, 'bad'), event('destroy', 'gw:v1.2.2', 201, 'old'),
                       create('gw:v1.2.2', 300, 'back'), event('destroy', 'gw:v1.2.3', 301, 'bad')])
    assert [(d['image'], d['previous_image']) for d in history] == [
        ('gw:v1.2.3', 'gw:v1.2.2'), ('gw:v1.2.2', 'gw:v1.2.3')]
    # A removal long after a creation is another story.
    assert deploys([create('gw:v1.2.3', 200, 'a'),
                    event('destroy', 'gw:v1.2.2', 900, 'b')])[0]['previous_image'] is None


def test_previous_image_unknown_without_history():
    assert previous_image('gw:v1.2.3', deploys([create('gw:v1.2.3', 10)])) is None
    assert previous_image(None, []) is None


def test_git_log_parsing_marks_config_commits():
    out = 'abc123456789\x1f1795443780\x1fAda\x1fRaise pool size\nbroken line\n'
    commits = parse_git_log(out, '/srv/app', ['config/'])
    assert commits == [{'kind': 'config', 'time': 1795443780.0, 'commit': 'abc123456789',
                        'author': 'Ada', 'repo': '/srv/app', 'paths': ['config/'],
                        'summary': 'abc12345 Raise pool size'}]
    assert parse_git_log(out, '/srv/app', [])[0]['kind'] == 'commit'


def test_timeline_orders_and_places_changes_against_the_onset():
    changes = [{'kind': 'deploy', 'time': 100.0}, {'kind': 'config', 'time': 250.0},
               {'kind': 'deploy', 'time': 10.0}]
    kept = timeline(changes, since=50.0, onset=200.0)
    assert [c['time'] for c in kept] == [250.0, 100.0]
    assert [c['seconds_before_onset'] for c in kept] == [-50.0, 100.0]
    assert kept[1]['time_iso'] == '1970-01-01T00:01:40Z'
    assert timeline([{'kind': 'deploy', 'time': 60.0}], 0.0)[0]['seconds_before_onset'] is None


def test_existing_containers_count_when_their_event_is_gone():
    running = {'name': 'sre-demo_inference-gateway_1', 'id': 'c300', 'image': 'gw:v1.2.3',
               'created_epoch': 300.4}
    # The engine forgot the creation event: the container itself still tells when it came.
    history = deploys([create('gw:v1.2.2', 100)], [running])
    assert [(d['time'], d['image'], d['previous_image']) for d in history] == [
        (100, 'gw:v1.2.2', None), (300.4, 'gw:v1.2.3', 'gw:v1.2.2')]
    # With its event still there, the container is not counted twice.
    assert len(deploys([create('gw:v1.2.3', 300)], [running])) == 1
