"""demo/k8s checked offline, no cluster: the manifests parse and hang together, use the images the
demo rig builds, limit every container, carry the demo's rules, and run.sh refuses to run without a
cluster (exit 2, naming what to set)."""

import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

K8S = ROOT / 'demo' / 'k8s'
NAMESPACE = 'sre-demo'
CLUSTER_SCOPED = {'Namespace', 'ClusterRole', 'ClusterRoleBinding'}
RENDER = [sys.executable, str(ROOT / 'demo' / 'prometheus' / 'render_rules.py'), '--preset', 'demo',
          '--window', '30s', '--critical-for', '10s', '--warning-for', '30s']
PROMETHEUS_IMAGE = re.compile(r'^quay\.io/prometheus/prometheus:v\d+\.\d+\.\d+$')


def load(name):
    docs = [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc is not None]
    # A kind: List stands for its items, as kubectl apply takes them.
    return [item for doc in docs for item in (doc['items'] if doc.get('kind') == 'List' else [doc])]


def manifests():
    """{file name: [objects]} of every YAML file in demo/k8s."""
    return {path.name: load(path.name) for path in sorted(K8S.glob('*.y*ml'))}


def objects(kind=None):
    found = [obj for docs in manifests().values() for obj in docs]
    return [obj for obj in found if kind is None or obj['kind'] == kind]


def by_name(kind, name):
    matches = [obj for obj in objects(kind) if obj['metadata']['name'] == name]
    assert len(matches) == 1, '%s %s: %d found' % (kind, name, len(matches))
    return matches[0]


def containers(deployment):
    return deployment['spec']['template']['spec']['containers']


def compose_images():
    """Images of demo/docker-compose.yml, ${VAR:-default} resolved to the default."""
    compose = yaml.safe_load((ROOT / 'demo' / 'docker-compose.yml').read_text())
    return {re.sub(r'\$\{[A-Z_]+:-([^}]*)\}', r'\1', service['image']) for service in compose['services'].values()}


def rig_images():
    """sre-demo/<service>:<tag> of demo/rig.sh's IMAGES (what `demo/rig.sh images` builds)."""
    text = (ROOT / 'demo' / 'rig.sh').read_text()
    block = re.search(r'^IMAGES=\((.*?)^\)', text, re.S | re.M).group(1)
    return {'sre-demo/%s:%s' % tuple(spec.split(':')[:2]) for spec in re.findall(r'"([^"]+)"', block)}


def test_every_yaml_parses_into_named_objects():
    files = manifests()
    assert {'namespace.yaml', 'inference-gateway.yaml', 'model-service.yaml', 'feature-store.yaml',
            'loadgen.yaml', 'prometheus.yaml', 'rbac-runbook.yaml'} <= set(files)
    for name, docs in files.items():
        assert docs, name
        assert (K8S / name).read_text().startswith('---\n'), name
        for obj in docs:
            assert obj.get('apiVersion') and obj.get('kind') and obj['metadata'].get('name'), (name, obj)
            if obj['kind'] in CLUSTER_SCOPED:
                assert 'namespace' not in obj['metadata'], (name, obj['metadata'])
            else:
                assert obj['metadata'].get('namespace') == NAMESPACE, (name, obj['kind'], obj['metadata'])
    assert [obj['metadata']['name'] for obj in objects('Namespace')] == [NAMESPACE]


def test_deployment_selectors_match_their_templates():
    deployments = objects('Deployment')
    assert {d['metadata']['name'] for d in deployments} == {
        'inference-gateway', 'model-service', 'feature-store', 'loadgen', 'prometheus'}
    for deployment in deployments:
        selector = deployment['spec']['selector']
        assert set(selector) == {'matchLabels'}, deployment['metadata']['name']
        labels = deployment['spec']['template']['metadata']['labels']
        assert selector['matchLabels'].items() <= labels.items(), deployment['metadata']['name']
        assert labels['app'] == deployment['metadata']['name']


def test_services_select_pods_and_ports_that_exist():
    services = objects('Service')
    assert {s['metadata']['name'] for s in services} == {
        'inference-gateway', 'model-service', 'feature-store', 'prometheus'}
    for service in services:
        selector = service['spec']['selector']
        pods = [d for d in objects('Deployment') if selector.items() <= d['spec']['template']['metadata']['labels'].items()]
        assert len(pods) == 1, (service['metadata']['name'], selector)
        ports = {p['name']: p['containerPort'] for c in containers(pods[0]) for p in c.get('ports', [])}
        for port in service['spec']['ports']:
            target = port.get('targetPort', port['port'])
            assert target in ports or target in ports.values(), (service['metadata']['name'], port, ports)


def test_images_are_those_the_demo_rig_builds():
    built = compose_images()
    assert built == {'sre-demo/inference-gateway:v1.2.2', 'sre-demo/model-service:v1.0.0',
                     'sre-demo/feature-store:v1.0.0', 'sre-demo/loadgen:v1.0.0', 'sre-demo/orders:v1.0.0'}
    assert built <= rig_images()
    used = {c['image'] for d in objects('Deployment') for c in containers(d)}
    ours = {image for image in used if image.startswith('sre-demo/')}
    # The Kubernetes demo is the High Error Rate one: the orders service (and its PostgreSQL) stay on compose.
    assert ours == built - {'sre-demo/orders:v1.0.0'}, 'the demo runs the images of demo/docker-compose.yml'
    others = used - ours
    assert len(others) == 1 and PROMETHEUS_IMAGE.match(others.pop()), used
    for deployment in objects('Deployment'):
        for container in containers(deployment):
            assert container.get('imagePullPolicy') == 'IfNotPresent', container['name']
    # run.sh loads into kind the images of the rig, the bad version too.
    text = (K8S / 'run.sh').read_text()
    listed = set(re.search(r'^IMAGES=\((.*?)\)', text, re.S | re.M).group(1).split())
    assert listed == rig_images() - {'sre-demo/orders:v1.0.0'}
    assert re.search(r'^BAD_VERSION=v1\.2\.3$', text, re.M) and 'sre-demo/inference-gateway:v1.2.3' in listed


def test_every_container_has_limits_and_requests():
    for deployment in objects('Deployment'):
        for container in containers(deployment):
            resources = container.get('resources') or {}
            assert {'cpu', 'memory'} <= set(resources.get('limits') or {}), (deployment['metadata']['name'], resources)
            assert {'cpu', 'memory'} <= set(resources.get('requests') or {}), (deployment['metadata']['name'], resources)
    # The compose limits the saturation and memory faults run into.
    assert containers(by_name('Deployment', 'inference-gateway'))[0]['resources']['limits'] == {'cpu': '1', 'memory': '160Mi'}


def test_restricted_pod_security():
    for deployment in objects('Deployment'):
        spec = deployment['spec']['template']['spec']
        assert spec['securityContext']['runAsNonRoot'] is True, deployment['metadata']['name']
        assert spec['securityContext']['seccompProfile'] == {'type': 'RuntimeDefault'}
        for container in spec['containers']:
            context = container['securityContext']
            assert context['allowPrivilegeEscalation'] is False and context['capabilities'] == {'drop': ['ALL']}


def test_probes_and_scrape_annotations_of_the_demo_services():
    for name, port in (('inference-gateway', 8000), ('model-service', 8080), ('feature-store', 8081)):
        deployment = by_name('Deployment', name)
        container = containers(deployment)[0]
        assert container['readinessProbe']['httpGet']['path'] in ('/health', '/ready'), name
        assert container['livenessProbe']['httpGet']['path'] == '/health', name
        assert container['ports'] == [{'name': 'http', 'containerPort': port}]
        env = {e['name']: e['value'] for e in container['env']}
        assert env['HOST'] == '0.0.0.0' and env['PORT'] == str(port)
        annotations = deployment['spec']['template']['metadata']['annotations']
        assert annotations == {'prometheus.io/scrape': 'true', 'prometheus.io/port': str(port)}
    assert containers(by_name('Deployment', 'model-service'))[0]['readinessProbe']['httpGet']['path'] == '/ready'


def test_gateway_has_the_fault_knobs_of_the_compose_demo():
    compose = yaml.safe_load((ROOT / 'demo' / 'docker-compose.yml').read_text())['services']['inference-gateway']
    env = {e['name']: e['value'] for e in containers(by_name('Deployment', 'inference-gateway'))[0]['env']}
    assert set(compose['environment']) == set(env)
    assert env['FAULT'] == '' and env['FEATURE_ENDPOINT_PREDICT_ENABLED'] == 'true'
    assert env['CIRCUIT_BREAKER_THRESHOLD'] == env['CIRCUIT_BREAKER_TIMEOUT'] == ''
    assert env['MODEL_SERVICE_URL'] == 'http://model-service:8080' and env['FEATURE_STORE_URL'] == 'http://feature-store:8081'
    mounts = containers(by_name('Deployment', 'inference-gateway'))[0]['volumeMounts']
    assert os.path.dirname(env['FAULT_STATE_FILE']) in [m['mountPath'] for m in mounts]
    loadgen = {e['name']: e['value'] for e in containers(by_name('Deployment', 'loadgen'))[0]['env']}
    assert loadgen['TARGET_URL'] == 'http://inference-gateway:8000'


def test_gateway_hpa_and_annotations():
    hpa = by_name('HorizontalPodAutoscaler', 'inference-gateway')
    assert hpa['apiVersion'] == 'autoscaling/v2'
    assert hpa['spec']['scaleTargetRef'] == {'apiVersion': 'apps/v1', 'kind': 'Deployment', 'name': 'inference-gateway'}
    assert hpa['spec']['minReplicas'] <= by_name('Deployment', 'inference-gateway')['spec']['replicas'] <= hpa['spec']['maxReplicas']
    annotations = by_name('Deployment', 'inference-gateway')['metadata']['annotations']
    assert annotations['kubernetes.io/change-cause'].endswith('v1.2.2') and 'sre-demo/owner' in annotations


def test_prometheus_discovers_pods_with_rbac():
    deployment = by_name('Deployment', 'prometheus')
    account = deployment['spec']['template']['spec']['serviceAccountName']
    by_name('ServiceAccount', account)
    role = by_name('ClusterRole', 'sre-demo-prometheus')
    assert role['rules'] == [{'apiGroups': [''], 'resources': ['pods'], 'verbs': ['get', 'list', 'watch']}]
    binding = by_name('ClusterRoleBinding', 'sre-demo-prometheus')
    assert binding['roleRef'] == {'apiGroup': 'rbac.authorization.k8s.io', 'kind': 'ClusterRole', 'name': 'sre-demo-prometheus'}
    assert binding['subjects'] == [{'kind': 'ServiceAccount', 'name': account, 'namespace': NAMESPACE}]
    config = yaml.safe_load(by_name('ConfigMap', 'prometheus-config')['data']['prometheus.yml'])
    job = config['scrape_configs'][0]
    assert job['honor_labels'] is True
    assert job['kubernetes_sd_configs'] == [{'role': 'pod', 'namespaces': {'own_namespace': True}}]
    targets = {tuple(r.get('source_labels', [])): r for r in job['relabel_configs']}
    assert targets[('__meta_kubernetes_namespace',)]['target_label'] == 'namespace'
    relabel = targets[('__address__', '__meta_kubernetes_pod_annotation_prometheus_io_port')]
    assert re.sub(relabel['regex'], relabel['replacement'].replace('$', '\\'), '10.244.0.7:8000;8000') == '10.244.0.7:8000'
    assert re.sub(relabel['regex'], relabel['replacement'].replace('$', '\\'), '10.244.0.7;8081') == '10.244.0.7:8081'
    assert config['global']['scrape_interval'] == '1s'
    mounts = {m['name']: m['mountPath'] for m in containers(deployment)[0]['volumeMounts']}
    assert config['rule_files'] == [mounts['rules'] + '/*.rules.yml']


def test_prometheus_rules_are_the_demo_rules(tmp_path):
    rules = by_name('ConfigMap', 'prometheus-rules')['data']['high-error-rate.rules.yml']
    rendered = subprocess.run(RENDER, capture_output=True, text=True, check=True).stdout
    assert rules == rendered, 'regenerate the prometheus-rules ConfigMap: %s' % ' '.join(RENDER[1:])
    names = {r.get('record') or r.get('alert') for g in yaml.safe_load(rules)['groups'] for r in g['rules']}
    assert {'HighErrorRate', 'service:http_requests:error_ratio_rate30s', 'slo:availability:error_budget_remaining'} <= names
    # promtool and shellcheck come with make deps.
    path = tmp_path / 'rules.yml'
    path.write_text(rules)
    subprocess.run(['promtool', 'check', 'rules', str(path)], check=True, capture_output=True)


def test_runbook_rbac_read_only_and_mitigation():
    def grants(name):
        out = {}
        for rule in by_name('ClusterRole', name)['rules']:
            for group in rule['apiGroups']:
                for resource in rule['resources']:
                    out.setdefault((group, resource), set()).update(rule['verbs'])
        return out

    triage, mitigate = grants('sre-runbooks-triage'), grants('sre-runbooks-mitigate')
    assert {'get', 'list'} <= triage[('apps', 'deployments')] and 'list' in triage[('apps', 'replicasets')]
    assert {'get', 'list'} <= triage[('', 'pods')] and triage[('', 'pods/log')] == {'get'}
    assert 'list' in triage[('', 'events')] and 'get' in triage[('', 'endpoints')]
    assert triage[('', 'services/proxy')] == {'get'} and 'get' in triage[('', 'configmaps')]
    assert 'get' in triage[('autoscaling', 'horizontalpodautoscalers')] and 'list' in triage[('metrics.k8s.io', 'pods')]
    for verbs in triage.values():
        assert verbs <= {'get', 'list', 'watch'}, 'the triage role is read-only'
    assert mitigate == {('apps', 'deployments'): {'patch'}, ('autoscaling', 'horizontalpodautoscalers'): {'patch'},
                        ('', 'configmaps'): {'patch'}}
    for binding in objects('RoleBinding'):
        assert binding['roleRef']['name'] in ('sre-runbooks-triage', 'sre-runbooks-mitigate')
        assert binding['subjects'] == [{'kind': 'ServiceAccount', 'name': 'sre-runbooks', 'namespace': NAMESPACE}]


def test_run_sh_is_clean_shell():
    script = K8S / 'run.sh'
    assert os.access(script, os.X_OK)
    subprocess.run(['bash', '-n', str(script)], check=True)
    proc = subprocess.run(['shellcheck', str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    text = script.read_text()
    # The port-forward is stopped by the pid it recorded, never by name.
    assert 'pkill' not in text and 'killall' not in text
    assert 'ansible-playbook" playbooks/high_error_rate.yml -i inventories/kubernetes' in text.replace('$ansible_playbook', 'ansible-playbook')


@pytest.mark.parametrize('command', ['up', 'bad-deploy', 'runbook', 'down'])
def test_run_sh_without_a_cluster_exits_2_naming_what_to_set(command, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ('KUBECONFIG', 'SRE_RUNBOOKS_TEST_KUBECONFIG')}
    env['SRE_DEMO_K8S_STATE_DIR'] = str(tmp_path)
    proc = subprocess.run([str(K8S / 'run.sh'), command], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert 'KUBECONFIG' in proc.stderr and 'SRE_RUNBOOKS_TEST_KUBECONFIG' in proc.stderr


def test_run_sh_with_an_unreachable_cluster_exits_2(tmp_path):
    kubeconfig = tmp_path / 'kubeconfig'
    kubeconfig.write_text(yaml.safe_dump({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'nowhere',
        'clusters': [{'name': 'nowhere', 'cluster': {'server': 'https://127.0.0.1:9'}}],
        'contexts': [{'name': 'nowhere', 'context': {'cluster': 'nowhere', 'user': 'nobody'}}],
        'users': [{'name': 'nobody', 'user': {'token': 'none'}}]}))
    env = dict(os.environ, SRE_DEMO_K8S_STATE_DIR=str(tmp_path))
    env.pop('KUBECONFIG', None)
    env['SRE_RUNBOOKS_TEST_KUBECONFIG'] = str(kubeconfig)
    proc = subprocess.run([str(K8S / 'run.sh'), 'up'], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert 'no cluster answers' in proc.stderr and str(kubeconfig) in proc.stderr
