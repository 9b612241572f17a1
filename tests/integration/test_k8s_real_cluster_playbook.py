"""The whole High Error Rate runbook (playbooks/high_error_rate.yml with inventories/kubernetes) on a
real Kubernetes cluster, named by the kubeconfig in SRE_RUNBOOKS_TEST_KUBECONFIG (its current context;
SRE_RUNBOOKS_TEST_CONTEXT picks another); skipped when unset, as in CI.

The demo of demo/k8s is created in a namespace of its own, sre-runbooks-test-<random>, with the
Prometheus ClusterRole and ClusterRoleBinding renamed after it; all of it is deleted at the end,
whatever happens. The cluster must hold the demo images (demo/k8s/run.sh up loads them into kind;
elsewhere load or push them, see docs/kubernetes.md) and pull quay.io/prometheus/prometheus, or
the image SRE_RUNBOOKS_TEST_PROMETHEUS_IMAGE names (make test: Prometheus built for make cluster,
whose node has no registry). Prometheus is read at its Service address where this machine routes
it (make cluster), else through kubectl port-forward on 127.0.0.1. The user of the kubeconfig needs
to create and delete namespaces, ClusterRoles and ClusterRoleBindings.

In file order: a baseline of good traffic (about 100 s), the bad deploy (v1.2.3, with a change-cause),
the HighErrorRate alert, then the runbook in advise mode (diagnosis: the deploy; recommended: roll back
to revision 1; nothing changed), which opens the incident and records revision 1 as its rollback
target. A run in auto mode that loses the API server during its investigation takes no action.
Then a mitigation adds a revision (an env change on the bad version, revision 3), after which the
revision before the current one is the bad deploy: rollback.yml (advise), and the runbook in
auto mode, still target revision 1 (rolled back to v1.2.2 as revision 4, verified, the Deployment's
other annotations kept). On the recovered demo, scale.yml and resources.yml act and verify (the
HPA's minReplicas, the memory limit; the new pods run). Then Pod Crash Loop (playbooks/pod_crash_loop.yml,
auto): a version whose image cannot be pulled, rolled back; a ConfigMap key removed since it was
applied, restored. Last, the demo's crash fault rolled out with Recreate: every pod crash-loops, and
the runbook finds the service down. About twelve minutes.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml

from conftest import ROOT, run_module
from rig import CAPTURE, ENV, run_with_faults, told
from tcp_proxy import TcpProxy

KUBECONFIG = os.environ.get('SRE_RUNBOOKS_TEST_KUBECONFIG')
CONTEXT = os.environ.get('SRE_RUNBOOKS_TEST_CONTEXT')
K8S = ROOT / 'demo' / 'k8s'
# demo/k8s/run.sh up applies these (namespace.yaml is made here, under another name).
MANIFESTS = ('prometheus.yaml', 'model-service.yaml', 'feature-store.yaml', 'inference-gateway.yaml', 'loadgen.yaml')
DEPLOYMENTS = ('prometheus', 'model-service', 'feature-store', 'inference-gateway', 'loadgen')
GATEWAY = 'inference-gateway'
GOOD = 'sre-demo/inference-gateway:v1.2.2'
BAD = 'sre-demo/inference-gateway:v1.2.3'
REVISION = 'deployment.kubernetes.io/revision'
CHANGE_CAUSE = 'kubernetes.io/change-cause'
# The demo's baseline is a 30 s window 60 s back (inventories/kubernetes): good traffic first.
BASELINE_SECONDS = 100
PROMETHEUS_IMAGE = os.environ.get('SRE_RUNBOOKS_TEST_PROMETHEUS_IMAGE')


pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='needs a real Kubernetes cluster: set SRE_RUNBOOKS_TEST_KUBECONFIG')


def retarget(obj, namespace):
    """A demo/k8s object moved to `namespace`; cluster-scoped names carry the namespace."""
    obj = json.loads(json.dumps(obj))
    kind = obj['kind']
    if PROMETHEUS_IMAGE and kind == 'Deployment' and obj['metadata']['name'] == 'prometheus':
        obj['spec']['template']['spec']['containers'][0]['image'] = PROMETHEUS_IMAGE
    if kind in ('ClusterRole', 'ClusterRoleBinding'):
        obj['metadata']['name'] = '%s-%s' % (obj['metadata']['name'], namespace)
    else:
        obj['metadata']['namespace'] = namespace
    if kind == 'ClusterRoleBinding':
        obj['roleRef']['name'] = '%s-%s' % (obj['roleRef']['name'], namespace)
        for subject in obj['subjects']:
            subject['namespace'] = namespace
    return obj


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Demo:
    def __init__(self):
        from kubernetes import client, config
        self.api = config.new_client_from_config(config_file=KUBECONFIG, context=CONTEXT)
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.namespace = 'sre-runbooks-test-%s' % uuid.uuid4().hex[:8]
        self.cluster_objects = []
        self.forward = None
        self.prometheus = None
        self.state_dir = None    # the incident records of this module's runs: one incident
        self.standin = None      # the channels' stand-in of these runs, and its URL
        self.channels = None

    # -- cluster ---------------------------------------------------------------------------
    def create(self):
        from kubernetes import utils
        namespace = self.adapt(yaml.safe_load((K8S / 'namespace.yaml').read_text()))
        namespace['metadata']['name'] = self.namespace
        self.core.create_namespace(namespace, _request_timeout=30)
        for name in MANIFESTS:
            for doc in yaml.safe_load_all((K8S / name).read_text()):
                # Each manifest is one kind: List document; kubectl apply takes its items.
                for obj in (doc or {}).get('items', [doc] if doc else []):
                    obj = self.adapt(retarget(obj, self.namespace))
                    if obj['kind'] in ('ClusterRole', 'ClusterRoleBinding'):
                        self.cluster_objects.append((obj['kind'], obj['metadata']['name']))
                    utils.create_from_dict(self.api, obj, namespace=self.namespace)

    def adapt(self, obj):
        """A demo object as this demo creates it (a subclass changes what its tests need)."""
        return obj

    def start_channels(self):
        """A stand-in of Slack, PagerDuty and Statuspage of its own (demo/lib/api_standin.py, which
        answers as their documented APIs do), so that what these runs tell is theirs alone."""
        self.standin = subprocess.Popen([sys.executable, str(ROOT / 'demo' / 'lib' / 'api_standin.py'), '--port', '0',
                                         '--log', os.devnull], stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.standin.stdout.readline()
        url = re.search(r'http://127\.0\.0\.1:\d+', line)
        assert url, 'the stand-in did not start: %s' % line
        url = url.group(0)
        self.channels = {'communicate_slack_api_url': url + '/slack/api', 'communicate_pagerduty_events_url': url + '/pagerduty/events',
                         'communicate_pagerduty_api_url': url + '/pagerduty/api',
                         'communicate_statuspage_api_url': url + '/statuspage/v1', 'standin': url}

    def journal(self):
        with urllib.request.urlopen(self.channels['standin'] + '/journal', timeout=10) as answer:
            return json.load(answer)

    def delete(self):
        if self.standin is not None:
            self.standin.terminate()
            self.standin.wait(10)
        if self.forward is not None:
            self.forward.terminate()
            try:
                self.forward.wait(10)
            except subprocess.TimeoutExpired:
                self.forward.kill()
        for kind, name in self.cluster_objects:
            delete = self.rbac.delete_cluster_role if kind == 'ClusterRole' else self.rbac.delete_cluster_role_binding
            try:
                delete(name, _request_timeout=30)
            except Exception as exc:  # pylint: disable=broad-except
                print('could not delete %s %s: %s' % (kind, name, exc))
        self.core.delete_namespace(self.namespace, _request_timeout=30)
        # Gone before the next module's demo starts: its pods' CPU requests would leave that one's
        # rollouts unscheduled on the one node.
        deadline = time.monotonic() + 120
        while any(n.metadata.name == self.namespace for n in self.core.list_namespace(_request_timeout=30).items):
            assert time.monotonic() < deadline, 'namespace %s not deleted within 120 s' % self.namespace
            time.sleep(1)

    def deployment(self, name=GATEWAY):
        return self.api.sanitize_for_serialization(
            self.apps.read_namespaced_deployment(name, self.namespace, _request_timeout=30))

    def pod_problems(self):
        problems = []
        for pod in self.core.list_namespaced_pod(self.namespace, _request_timeout=30).items:
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting if status.state else None
                if waiting and waiting.reason:
                    problems.append('%s: %s %s (%s)' % (pod.metadata.name, waiting.reason, waiting.message or '', status.image))
        return problems

    def wait_available(self, timeout=300):
        deadline = time.monotonic() + timeout
        for name in DEPLOYMENTS:
            while True:
                deployment = self.deployment(name)
                status = deployment.get('status') or {}
                replicas = deployment['spec']['replicas']
                if (status.get('availableReplicas') or 0) >= replicas and (status.get('updatedReplicas') or 0) >= replicas \
                        and (status.get('observedGeneration') or 0) >= deployment['metadata']['generation']:
                    break
                assert time.monotonic() < deadline, (
                    'deployment %s/%s not available after %ss; does the cluster hold the demo images '
                    '(demo/k8s/run.sh up loads them into kind)? %s' % (self.namespace, name, timeout, self.pod_problems()))
                time.sleep(2)

    def rollout_status(self):
        params = dict(name=GATEWAY, namespace=self.namespace, kubeconfig=KUBECONFIG, state='status', wait=True,
                      wait_timeout=240, request_timeout=30)
        if CONTEXT:
            params['context'] = CONTEXT
        result = run_module('k8s_rollout', params)
        assert result['status']['done'], result
        return result

    def history(self):
        params = dict(name=GATEWAY, namespace=self.namespace, kubeconfig=KUBECONFIG, state='history', request_timeout=30)
        if CONTEXT:
            params['context'] = CONTEXT
        return run_module('k8s_rollout', params)

    def bad_deploy(self):
        # kubectl set image + kubectl annotate change-cause, in one patch: revision 2 only gets it.
        body = {'metadata': {'annotations': {CHANGE_CAUSE: 'deploy inference-gateway v1.2.3 (test)'}},
                'spec': {'template': {'spec': {'containers': [{'name': GATEWAY, 'image': BAD}]}}}}
        self.apps.patch_namespaced_deployment(GATEWAY, self.namespace, body, _request_timeout=30,
                                              _content_type='application/strategic-merge-patch+json')
        self.rollout_status()

    # -- Prometheus ------------------------------------------------------------------------
    def reach_prometheus(self):
        """Prometheus at its Service address when this machine routes it, else port-forwarded."""
        address = self.core.read_namespaced_service('prometheus', self.namespace, _request_timeout=30).spec.cluster_ip
        try:
            socket.create_connection((address, 9090), timeout=2).close()
        except OSError:
            self.port_forward()
            return
        self.prometheus = 'http://%s:9090' % address
        self.wait_ready('its Service address')

    def wait_ready(self, how):
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.prometheus + '/-/ready', timeout=3):
                    return
            except OSError:
                pass
            assert self.forward is None or self.forward.poll() is None, 'kubectl port-forward exited: %s' % self.forward.stdout.read()
            assert time.monotonic() < deadline, 'Prometheus not ready through %s after 60 s' % how
            time.sleep(1)

    def port_forward(self):
        assert shutil.which('kubectl'), 'kubectl is needed to port-forward the demo Prometheus'
        kubectl = shutil.which('kubectl')
        port = free_port()
        command = [kubectl, '--kubeconfig', KUBECONFIG] + (['--context', CONTEXT] if CONTEXT else []) + [
            '--namespace', self.namespace, 'port-forward', '--address', '127.0.0.1', 'svc/prometheus', '%d:9090' % port]
        self.forward = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        self.prometheus = 'http://127.0.0.1:%d' % port
        self.wait_ready('the port-forward')

    def query(self, promql):
        url = self.prometheus + '/api/v1/query?' + urllib.parse.urlencode({'query': promql})
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.load(answer)['data']['result']

    def wait_query(self, promql, timeout, what):
        deadline = time.monotonic() + timeout
        while not self.query(promql):
            assert time.monotonic() < deadline, 'no %s after %ss (%s); pods: %s' % (what, timeout, promql, self.pod_problems())
            time.sleep(2)

    # -- the runbook -----------------------------------------------------------------------
    def runbook(self, tmp_path, mode, playbook=None, kubeconfig=KUBECONFIG, faults=(), **extra):
        """The runbook (or another playbook, with its extra vars) as on call (inventories/kubernetes),
        moved to this namespace and Prometheus; with FAULTS (rig.run_with_faults)."""
        out = tmp_path / ('incident-%s-%s.json' % (mode, (playbook or 'runbook').split('/')[-1]))
        overrides = tmp_path / 'overrides.json'
        workload = dict(yaml.safe_load((ROOT / 'inventories' / 'kubernetes' / 'host_vars' / 'inference-gateway.yml')
                                       .read_text())['runbook_kubernetes'], namespace=self.namespace)
        variables = {'runbook_kubernetes': workload, 'runbook_prometheus_url': self.prometheus,
                     'runbook_kubeconfig': kubeconfig, 'service': GATEWAY, 'incident_out': str(out),
                     'mitigate_mode': mode, 'runbook_state_dir': str(self.state_dir),
                     # The locks and ledger of this run, not those of a demo run on the same machine.
                     'mitigate_state_dir': str(tmp_path / 'state'), 'service_down_state_dir': str(tmp_path / 'state'),
                     'communicate_report_dir': str(tmp_path / 'incidents')}
        variables.update({k: v for k, v in self.channels.items() if k != 'standin'})
        if CONTEXT:
            variables['runbook_kube_context'] = CONTEXT
        if playbook:
            variables['runbook'] = playbook
        variables.update(extra)
        overrides.write_text(json.dumps(variables))
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), str(ROOT / CAPTURE),
                   '-i', str(ROOT / 'inventories' / 'kubernetes'), '-e', '@%s' % overrides]
        returncode, output = run_with_faults(command, faults, env=dict(ENV, KUBECONFIG=kubeconfig))
        assert returncode == 0, output
        for user in yaml.safe_load(open(KUBECONFIG, encoding='utf-8')).get('users') or []:
            token = (user.get('user') or {}).get('token')
            assert not token or token not in output, 'the kubeconfig token reached the output'
        return json.loads(out.read_text()), output

    def until_the_alert(self):
        """The demo running, a baseline of good traffic, the bad deploy, and its HighErrorRate alert."""
        self.wait_available()
        self.reach_prometheus()
        self.wait_query('count_over_time(service:http_requests:rate30s{service="%s"}[10m]) >= %d' % (GATEWAY, BASELINE_SECONDS),
                        BASELINE_SECONDS + 120, 'baseline of the good version')
        self.bad_deploy()
        self.wait_query('ALERTS{alertname="HighErrorRate",service="%s",alertstate="firing"}' % GATEWAY, 180,
                        'HighErrorRate alert after the bad deploy')


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    kube = Demo()
    kube.state_dir = tmp_path_factory.mktemp('incidents')
    kube.start_channels()
    kube.create()
    try:
        kube.until_the_alert()
        yield kube
    finally:
        kube.delete()


def test_bad_deploy_is_revision_2(demo):
    history = demo.history()
    assert [(e['revision'], e['images'], e['change_cause']) for e in history['history']] == [
        (1, [GOOD], 'deploy inference-gateway v1.2.2'), (2, [BAD], 'deploy inference-gateway v1.2.3 (test)')], history


def test_k8s_status_sees_the_pods_endpoints_and_hpa(demo):
    params = dict(name=GATEWAY, namespace=demo.namespace, kubeconfig=KUBECONFIG, request_timeout=30)
    if CONTEXT:
        params['context'] = CONTEXT
    status = run_module('k8s_status_info', params)
    assert not status.get('failed'), status
    assert status['deployment']['images'] == [BAD] and status['deployment']['revision'] == 2
    assert any(p['phase'] == 'Running' and p['ready'] for p in status['pods']), status['pods']
    assert status['endpoints']['found'] and status['endpoints']['ready'] >= 1, status['endpoints']
    assert status['hpa'] and status['hpa']['name'] == GATEWAY, status['hpa']
    # The bad version answers 500 on one endpoint but runs: nothing crashes (a pod the HPA just
    # added may still be starting).
    kinds = {p['kind'] for p in status['problems']}
    assert not kinds & {'CrashLoopBackOff', 'ImagePullBackOff', 'OOMKilled', 'CreateContainerConfigError'}, status


def test_advise_diagnoses_the_deploy_and_recommends_the_previous_revision(demo, tmp_path):
    before = demo.deployment()
    incident, output = demo.runbook(tmp_path, 'advise')
    diagnosis = incident['diagnosis']
    assert diagnosis['causes'][0]['cause'] == 'deploy', output
    assert diagnosis['recommended']['cause'] == 'deploy'
    action = diagnosis['action']
    assert action['name'] == 'rollback', action
    assert action['params']['to_revision'] == 1, action
    assert action['params'].get('to_image') in (None, GOOD), action
    assert incident['outcome'] == 'advised', incident.get('mitigation')
    assert incident['severity'] == 'critical'
    # The evidence came from the cluster: the rollout history, the service proxy, the pods' logs,
    # the metrics API (or the plain words that metrics-server is absent).
    assert incident['triage']['rollback_revision'] == 1
    assert incident['triage']['health']['checks'][0]['via'].startswith('service proxy %s/' % demo.namespace)
    logs = incident['investigate']['logs']
    assert logs['backend'] == 'kubernetes' and logs['pods'] and logs['top_messages'], logs
    resources = incident['investigate']['resources']
    assert resources['max_cpu_percent'] is not None or any('metrics-server' in m for m in resources['missing']), resources
    # Advice changes nothing (the HPA may change the replicas, not the template).
    after = demo.deployment()
    assert after['spec']['template'] == before['spec']['template']
    assert after['metadata']['annotations'][REVISION] == '2'
    assert after['spec']['template']['spec']['containers'][0]['image'] == BAD


def test_the_api_server_lost_mid_run_costs_its_evidence_and_no_action_is_taken(demo, tmp_path):
    """Auto mode, with the API server out of reach once the triage is done (a TCP proxy in front of
    it, cut): the logs and resources are missing evidence, the rollback the diagnosis plans
    interrupts the service, and is not taken on what is left."""
    config = yaml.safe_load(open(KUBECONFIG, encoding='utf-8'))
    context = next(c['context'] for c in config['contexts'] if c['name'] == (CONTEXT or config['current-context']))
    cluster = next(c['cluster'] for c in config['clusters'] if c['name'] == context['cluster'])
    server = urllib.parse.urlsplit(cluster['server'])
    proxy = TcpProxy(server.hostname, server.port or 443)
    cluster['server'] = '%s://%s:%d%s' % (server.scheme, server.hostname, proxy.port, server.path)
    kubeconfig = tmp_path / 'kubeconfig'
    kubeconfig.write_text(yaml.safe_dump(config))
    before = demo.deployment()
    try:
        incident, output = demo.runbook(tmp_path, 'auto', kubeconfig=str(kubeconfig), faults=[
            ('TASK [sre.runbooks.triage : Show the triage summary]', lambda _run: proxy.cut())])
    finally:
        proxy.cut()
    assert incident['triage']['error_rate']['verdict'] == 'critical', output
    missing = incident['diagnosis']['missing_evidence']
    assert any(m.startswith('logs') for m in missing) and any(m.startswith('resources') for m in missing), missing
    attempt = incident['mitigation']['attempts'][0]
    assert (attempt['action']['name'], attempt['decision'], attempt['acted']) == ('rollback', 'insufficient', False), attempt
    assert incident['outcome'] == 'insufficient_evidence'
    after = demo.deployment()
    assert after['spec']['template'] == before['spec']['template']
    assert after['metadata']['annotations'][REVISION] == '2'


def test_a_mitigation_that_adds_a_revision_does_not_move_the_rollback_target(demo, tmp_path):
    """An env change on the bad version (a circuit breaker, as a mitigation would set it) makes
    revision 3, whose previous revision is the bad deploy. rollback.yml, in the incident that the
    advise run opened, still targets revision 1, recorded by that first run."""
    params = dict(name=GATEWAY, namespace=demo.namespace, kubeconfig=KUBECONFIG, env={'CIRCUIT_BREAKER_THRESHOLD': '5'},
                  request_timeout=30)
    if CONTEXT:
        params['context'] = CONTEXT
    changed = run_module('k8s_workload', params)
    assert changed['changed'] and changed['revision_before'] == 2 and changed['creates_revision'], changed
    demo.rollout_status()
    assert [(e['revision'], e['images']) for e in demo.history()['history']] == [(1, [GOOD]), (2, [BAD]), (3, [BAD])]
    incident, output = demo.runbook(tmp_path, 'advise', playbook='playbooks/rollback.yml')
    assert incident['triage']['rollback_revision'] == 1, output
    assert 'recorded by run' in incident['triage']['rollback_origin'], incident['triage']
    attempt = incident['mitigation']['attempts'][0]
    assert attempt['action']['params']['to_revision'] == 1 and not attempt['acted'], attempt
    assert demo.deployment()['metadata']['annotations'][REVISION] == '3'


def test_auto_rolls_back_to_the_good_revision_and_verifies(demo, tmp_path):
    incident, output = demo.runbook(tmp_path, 'auto')
    assert incident['outcome'] == 'resolved', output
    assert incident['triage']['rollback_revision'] == 1, incident['triage']
    attempts = incident['mitigation']['attempts']
    assert attempts[0]['action']['name'] == 'rollback' and attempts[0]['decision'] == 'act', attempts
    assert attempts[0]['acted'] is True
    assert incident['verify']['recovered'] is True, incident['verify']
    deployment = demo.deployment()
    container = deployment['spec']['template']['spec']['containers'][0]
    assert container['image'] == GOOD
    assert {e['name']: e.get('value', '') for e in container['env']}['CIRCUIT_BREAKER_THRESHOLD'] == ''
    # kubectl rollout undo --to-revision=1: revision 1's template comes back as revision 4 ...
    annotations = deployment['metadata']['annotations']
    assert annotations[REVISION] == '4'
    assert [(e['revision'], e['images']) for e in demo.history()['history']] == [(2, [BAD]), (3, [BAD]), (4, [GOOD])]
    # ... with the annotations of that revision: the Deployment's own are kept, the bad deploy's
    # change-cause is gone.
    assert annotations['sre-demo/owner'] == 'ml-platform'
    assert annotations[CHANGE_CAUSE] == 'deploy inference-gateway v1.2.2'
    demo.rollout_status()
    # One incident across the three runs: one thread, opened by the first, resolved by the last.
    sent = told(demo.journal())
    slack = [s[1:] for s in sent if s[0] == 'slack' and not s[1].startswith('reaction')]
    assert slack[0] == ('🔥 INCIDENT: High Error Rate - Inference Gateway', None), slack
    assert [what for what, _thread in slack].count('🔥 INCIDENT: High Error Rate - Inference Gateway') == 1, slack
    assert slack[-1][0] == '✅ RESOLVED' and {thread for _what, thread in slack[1:]} == {slack[1][1]}, slack
    assert [s[1] for s in sent if s[0] == 'statuspage'][-1] == 'resolved', sent


def test_scale_and_resources_playbooks_act_and_verify(demo, tmp_path):
    """Runbook options 2 alone, on the recovered demo, in auto mode: scale.yml through the HPA's
    minReplicas (which would undo spec.replicas), resources.yml doubling the memory limit; each
    verified, and the new pods run."""
    scaled, output = demo.runbook(tmp_path, 'auto', playbook='playbooks/scale.yml', replicas='+2')
    assert scaled['mitigation']['attempts'][0]['acted'] and scaled['outcome'] == 'resolved', output
    autoscaler = demo.autoscaling.read_namespaced_horizontal_pod_autoscaler(GATEWAY, demo.namespace, _request_timeout=30)
    assert autoscaler.spec.min_replicas == 4, autoscaler.spec
    resized, output = demo.runbook(tmp_path, 'auto', playbook='playbooks/resources.yml', memory_factor=2, mitigate_cooldown=0)
    assert resized['mitigation']['attempts'][0]['acted'] and resized['outcome'] == 'resolved', output
    demo.rollout_status()
    deployment = demo.deployment()
    assert deployment['spec']['template']['spec']['containers'][0]['resources']['limits'] == {'cpu': '1', 'memory': '320Mi'}
    assert deployment['status']['readyReplicas'] == 4, deployment['status']


def test_a_crash_looping_gateway_is_the_service_down(demo, tmp_path):
    """The demo's crash fault (MODEL_SERVICE_URL=not-a-url: the gateway exits at start), rolled out
    with Recreate so that no pod serves: the pods crash-loop under the node's back-off, the Service
    has no ready endpoint, and the health checks through the API server's service proxy fail. In
    advise mode the runbook finds the service down from the cluster's own evidence, recommends
    rolling back the environment change, and changes nothing."""
    body = {'spec': {'strategy': {'type': 'Recreate', 'rollingUpdate': None},
                     'template': {'spec': {'containers': [{'name': GATEWAY, 'env': [{'name': 'MODEL_SERVICE_URL', 'value': 'not-a-url'}]}]}}}}
    demo.apps.patch_namespaced_deployment(GATEWAY, demo.namespace, body, _request_timeout=30,
                                          _content_type='application/strategic-merge-patch+json')
    deadline = time.monotonic() + 120
    while not any('CrashLoopBackOff' in problem for problem in demo.pod_problems()):
        assert time.monotonic() < deadline, 'no pod in CrashLoopBackOff after 120 s: %s' % demo.pod_problems()
        time.sleep(2)
    before = demo.deployment()
    incident, output = demo.runbook(tmp_path, 'advise')
    assert incident['triage']['service_down'] and incident['severity'] == 'critical', output
    checks = incident['service_down']['checks']
    assert 'CrashLoopBackOff' in {p['kind'] for p in checks['problems']}, checks['problems']
    assert checks['endpoints']['found'] and checks['endpoints']['ready'] == 0, checks['endpoints']
    assert any('MODEL_SERVICE_URL' in line for line in checks['logs']), checks['logs']
    recommended = incident['diagnosis']['recommended']
    assert recommended['cause'] == 'service_down', recommended
    # The environment change is the cause (a revision with the same image that changes settings):
    # back to the revision before it, as it was before the crash.
    assert recommended['action']['name'] == 'rollback' and not incident['diagnosis']['refused'], incident['diagnosis']['summary']
    assert any('env MODEL_SERVICE_URL changed' in line for line in recommended['evidence']), recommended['evidence']
    assert incident['outcome'] == 'advised'
    assert demo.deployment()['spec']['template'] == before['spec']['template']
