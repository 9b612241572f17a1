"""The whole runbook on Kubernetes, inventories/kubernetes as given, against the rig: the real
Prometheus, the real demo services and their real fault, behind a fake Kubernetes API server
(tests/integration/fake_k8s.py) that answers the REST paths the modules call as the Kubernetes API
documents them. No API server can be installed here; the real-cluster suite is
test_k8s_real_cluster_playbook.py.

The fake cluster holds the gateway's Deployment with its owned ReplicaSets (revision 1 v1.2.2,
revision 2 v1.2.3, the bad deploy), its pods (their logs are the real container's), its HPA,
Service, Endpoints and PodMetrics; its service proxy forwards to the real gateway. Playing the
kubelet, it runs the image a PATCH gives the Deployment on the rig's container (rig.sh deploy), so
that a rollback through the Kubernetes API really brings the error rate down.

The service-down case needs no fault on the rig: the fake cluster's pods crash-loop and its
Service has no ready endpoint, so the health checks through the proxy get the API server's 503.
"""

import json
import subprocess
import threading
from datetime import datetime

import pytest

from fake_k8s import TOKEN, FakeApiServer, deployment, endpoints, event, hpa, pod, pod_metrics, replica_set, service, stamp, write_kubeconfig
from rig import ENV, ROOT, command, rig

NAMESPACE = 'sre-demo'
IMAGE = 'sre-demo/inference-gateway:'


def image_of(obj):
    return obj['spec']['template']['spec']['containers'][0]['image']


class ClusterOnTheRig(FakeApiServer):
    """The fake API server, whose kubelet is the rig: a new image of the gateway's Deployment is
    deployed to its container in the background (the rollout converges on the API at once, the
    container follows in seconds, as pods do)."""

    def __init__(self):
        super().__init__()
        self.deployed = []

    def patch(self, key, query, content_type, body):
        before = image_of(self.objects[key]) if key[0] == 'deployments' else None
        new = super().patch(key, query, content_type, body)
        if before and not query.get('dryRun') and image_of(new) != before:
            tag = image_of(new).rsplit(':', 1)[1]
            self.deployed.append(tag)
            threading.Thread(target=rig, args=('deploy', tag), daemon=True).start()
        return new


def container_logs():
    """The real gateway container's last log lines (JSON, as the pods would print them), each at
    the time the engine took it, as the kubelet stamps a pod's lines."""
    ids = subprocess.run(['docker', 'ps', '-q', '--filter', 'label=com.docker.compose.service=inference-gateway'],
                         capture_output=True, text=True, timeout=30, check=True).stdout.split()
    out = subprocess.run(['docker', 'logs', '--timestamps', '--tail', '300', ids[0]], capture_output=True, text=True,
                         timeout=30, check=True)
    lines = []
    for line in (out.stdout + out.stderr).splitlines():
        stamp_text, _space, text = line.partition(' ')
        moment = datetime.fromisoformat(stamp_text[:26].rstrip('Z') + '+00:00')
        lines.append((moment, text))
    return sorted(lines, key=lambda entry: entry[0])


@pytest.fixture()
def cluster(tmp_path):
    """The bad deploy of v1.2.3 on the rig, as the fake cluster shows it."""
    rig('clear')
    rig('wait-clear', 180)
    rig('wait-baseline', 100)
    deployed_at = stamp()
    rig('deploy', 'v1.2.3')
    rig('wait-alert', 180)
    api = ClusterOnTheRig()
    gateway = deployment('inference-gateway', NAMESPACE, image=IMAGE + 'v1.2.3', replicas=2, revision=2,
                         limits={'cpu': '500m', 'memory': '256Mi'})
    pods = [pod(gateway, 'inference-gateway-h00002-%s' % suffix) for suffix in ('a1', 'b2')]
    api.add(gateway, *pods,
            replica_set(gateway, 1, IMAGE + 'v1.2.2', created='2026-11-20T08:00:00Z',
                        change_cause='deploy v1.2.2'),
            replica_set(gateway, 2, IMAGE + 'v1.2.3', created=deployed_at, replicas=2, change_cause='deploy v1.2.3'),
            hpa(gateway, 2, 6, current=2), service(gateway, port=8000, target_port=8000),
            endpoints(gateway, ready=pods, port=8000),
            *[pod_metrics(p, cpu='120m', memory='90Mi') for p in pods])
    lines = container_logs()
    for each in pods:
        api.set_log(NAMESPACE, each['metadata']['name'], 'inference-gateway', lines)
    api.proxy_to(NAMESPACE, 'inference-gateway', 'http://127.0.0.1:8000')
    kubeconfig = write_kubeconfig(api, tmp_path / 'kubeconfig', NAMESPACE)
    yield api, kubeconfig
    api.close()
    rig('clear')


def run_on_kubernetes(tmp_path, kubeconfig, mode, playbook='playbooks/high_error_rate.yml', *extra):
    out = tmp_path / ('incident-%s-%s.json' % (mode, playbook.split('/')[-1]))
    cmd = command('tests/integration/playbooks/capture_incident.yml', '-e', 'service=inference-gateway', '-e', 'runbook=%s' % playbook,
                  '-e', 'incident_out=%s' % out, '-e', 'mitigate_mode=%s' % mode, '-vvv',
                  # The rig's Prometheus: its series carry no namespace label.
                  '-e', 'runbook_prometheus_url=http://127.0.0.1:9090', '-e', '{"triage_selector": {}}',
                  '-e', 'runbook_kubeconfig=%s' % kubeconfig, '-e', 'mitigate_state_dir=%s' % (tmp_path / 'state'),
                  *extra)
    cmd[cmd.index('-i') + 1] = str(ROOT / 'inventories' / 'kubernetes')
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=ENV, cwd=ROOT,
                          stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert TOKEN not in output
    return json.loads(out.read_text()), output


def test_advice_then_rollback_through_the_kubernetes_api(cluster, tmp_path):
    api, kubeconfig = cluster
    incident, _output = run_on_kubernetes(tmp_path, kubeconfig, 'advise')
    assert incident['platform'] == 'kubernetes'
    assert incident['triage']['rollback_revision'] == 1
    assert incident['triage']['health']['checks'][0]['via'] == 'service proxy %s/http:inference-gateway:8000' % NAMESPACE
    assert incident['investigate']['logs']['top_messages'], incident['investigate']['logs']
    assert incident['investigate']['resources']['hpa']['max_replicas'] == 6
    recommended = incident['diagnosis']['recommended']
    assert recommended['cause'] == 'deploy', [(c['cause'], c['confidence'], c.get('explains'), c['evidence']) for c in incident['diagnosis']['causes']]
    assert recommended['action']['name'] == 'rollback' and recommended['action']['params']['to_revision'] == 1
    assert incident['outcome'] == 'advised' and not api.patches()

    incident, _output = run_on_kubernetes(tmp_path, kubeconfig, 'auto')
    attempt = incident['mitigation']['attempts'][0]
    assert attempt['action']['name'] == 'rollback' and attempt['acted']
    assert api.deployed == ['v1.2.2']
    rolled = api.get('deployments', 'inference-gateway', NAMESPACE)
    assert image_of(rolled) == IMAGE + 'v1.2.2'
    assert rolled['metadata']['annotations']['deployment.kubernetes.io/revision'] == '3'
    assert incident['verify']['recovered'] and incident['outcome'] == 'resolved', incident['verify']


def test_a_crash_looping_deployment_is_service_down_on_kubernetes(tmp_path):
    api = FakeApiServer()
    try:
        gateway = deployment('inference-gateway', NAMESPACE, image=IMAGE + 'v1.2.2', replicas=2, ready=0, revision=2)
        pods = [pod(gateway, 'inference-gateway-h00002-%s' % suffix, waiting='CrashLoopBackOff', restarts=7,
                    last_terminated='Error') for suffix in ('a1', 'b2')]
        api.add(gateway, *pods,
                replica_set(gateway, 1, IMAGE + 'v1.2.1', created='2026-11-18T08:00:00Z'),
                replica_set(gateway, 2, IMAGE + 'v1.2.2', created='2026-11-20T08:00:00Z', replicas=2),
                service(gateway, port=8000, target_port=8000), endpoints(gateway, not_ready=pods, port=8000),
                event(pods[0], 'BackOff', 'Back-off restarting failed container inference-gateway'))
        for each in pods:
            api.set_log(NAMESPACE, each['metadata']['name'], 'inference-gateway',
                        ['{"level": "ERROR", "message": "config error: MODEL_SERVICE_URL is not set"}'], previous=True)
        kubeconfig = write_kubeconfig(api, tmp_path / 'kubeconfig', NAMESPACE)
        incident, _output = run_on_kubernetes(tmp_path, kubeconfig, 'advise')
    finally:
        api.close()
    assert incident['triage']['service_down'] and incident['severity'] == 'critical'
    checks = incident['service_down']['checks']
    assert {p['kind'] for p in checks['problems']} >= {'CrashLoopBackOff', 'NoReadyEndpoints'}, checks['problems']
    assert checks['endpoints'] == {'found': True, 'endpoints_found': True, 'selector': True, 'service': 'inference-gateway',
                                   'ready': 0, 'not_ready': 2}
    assert any('MODEL_SERVICE_URL' in line for line in checks['logs'])
    recommended = incident['diagnosis']['recommended']
    assert recommended['cause'] == 'service_down'
    # No deploy came before: a rollout restart, as the runbook's "Service Completely Down" does.
    assert recommended['action']['name'] == 'restart', recommended
    assert incident['outcome'] == 'advised' and not api.patches()


def test_scale_and_resources_playbooks_on_kubernetes(tmp_path):
    """Runbook options 2 alone (scale.yml, resources.yml) on the healthy rig: through the gate in
    auto mode, the HPA's minReplicas raised, the memory limit doubled, each verified."""
    api = FakeApiServer()
    try:
        gateway = deployment('inference-gateway', NAMESPACE, image=IMAGE + 'v1.2.2', replicas=2, revision=1,
                             limits={'cpu': '500m', 'memory': '256Mi'})
        pods = [pod(gateway, 'inference-gateway-h00001-%s' % suffix) for suffix in ('a1', 'b2')]
        api.add(gateway, *pods, replica_set(gateway, 1, IMAGE + 'v1.2.2', replicas=2), hpa(gateway, 2, 6, current=2),
                service(gateway, port=8000, target_port=8000), endpoints(gateway, ready=pods, port=8000))
        api.proxy_to(NAMESPACE, 'inference-gateway', 'http://127.0.0.1:8000')
        kubeconfig = write_kubeconfig(api, tmp_path / 'kubeconfig', NAMESPACE)
        scaled, _output = run_on_kubernetes(tmp_path, kubeconfig, 'auto', 'playbooks/scale.yml', '-e', 'replicas=+2')
        resized, _output = run_on_kubernetes(tmp_path, kubeconfig, 'auto', 'playbooks/resources.yml',
                                             '-e', 'memory_factor=2', '-e', 'mitigate_cooldown=0')
        autoscaler = api.get('horizontalpodautoscalers', 'inference-gateway', NAMESPACE)
        limits = api.get('deployments', 'inference-gateway', NAMESPACE)['spec']['template']['spec']['containers'][0]
    finally:
        api.close()
    for incident in (scaled, resized):
        assert incident['mitigation']['attempts'][0]['acted'] and incident['outcome'] == 'resolved', incident['mitigation']
    # Under an HPA, the scale goes through its minReplicas (the HPA would undo spec.replicas).
    assert autoscaler['spec']['minReplicas'] == 4
    assert limits['resources']['limits'] == {'cpu': '500m', 'memory': '512Mi'}
