"""The AWX workflow "High Error Rate" (extensions/awx/config.yml) run as AWX runs it, in the
execution environment that `make ee` builds, on the real cluster of `make cluster`
(SRE_RUNBOOKS_TEST_KUBECONFIG; skipped without it, as test_k8s_real_cluster_playbook.py is).

AWX cannot run here and a mock of its API would prove nothing; what AWX does to run a job is done
as AWX does it (tests/awx_controller.py): each node's job template runs through ansible-runner in
the EE image, the survey's answers as extra vars, the credentials injected by their types'
injectors (the cluster through AWX's built-in Kubernetes bearer token type, with the token of the
runbook's own ServiceAccount and RBAC, demo/k8s/rbac-runbook.yaml), and the artifacts of each node
handed to the next. The demo runs in a namespace of its own, with channels of its own (the
stand-in of Slack, PagerDuty and Statuspage, demo/lib/api_standin.py).

In file order, on one bad deploy: the image holds the collection; a workflow whose approval is
denied changes nothing and says so; a second workflow, approved, rolls back to the good revision
and verifies it, in the same incident and Slack thread. Then the Preflight job template on the
compose rig, read-only: the docker host over SSH and Prometheus behind a token and a private CA,
both from the collection's credential types. Last, the other job templates with their surveys'
answers, on the recovered demo. About five minutes.
"""

import base64
import json
import re
import subprocess

import pytest
import yaml

from access import SSH_DIR
from auth_proxy import AuthProxy
from awx_controller import config, credential_type, exported_inventory, job_template, run_job, run_workflow
from conftest import ROOT
from rig import told
from test_k8s_real_cluster_playbook import BAD, CONTEXT, GATEWAY, GOOD, K8S, KUBECONFIG, REVISION, Demo, retarget
from test_rig_remote import ssh_sessions

pytestmark = pytest.mark.skipif(not KUBECONFIG, reason='needs a real Kubernetes cluster: set SRE_RUNBOOKS_TEST_KUBECONFIG')

EE = config()['sre_awx_execution_environment']['image']
MODULES = sorted(p.stem for p in (ROOT / 'plugins' / 'modules').glob('*.py') if p.stem != '__init__')
# What the inventory of AWX no longer holds: the credentials inject it.
SECRETS = ('runbook_prometheus_url', 'communicate_slack_token', 'communicate_slack_channel',
           'communicate_pagerduty_routing_key', 'communicate_escalation_routing_key', 'communicate_statuspage_api_key',
           'communicate_statuspage_page_id')
SLACK_TOKEN = 'xoxb-awx-credential-token'


def in_image(*command):
    proc = subprocess.run(['docker', 'run', '--rm', '--network', 'host', EE] + list(command), capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


class AwxDemo(Demo):
    """The demo, with the runbook's ServiceAccount and RBAC in its namespace, and AWX's view of it."""

    def grant_the_runbook(self):
        """demo/k8s/rbac-runbook.yaml in this namespace (its ClusterRoles named after it); the token
        of its ServiceAccount, as an AWX Kubernetes credential holds one."""
        from kubernetes import utils
        for obj in yaml.safe_load((K8S / 'rbac-runbook.yaml').read_text())['items']:
            obj = retarget(obj, self.namespace)
            if obj['kind'] == 'RoleBinding':
                obj['roleRef']['name'] = '%s-%s' % (obj['roleRef']['name'], self.namespace)
                for subject in obj['subjects']:
                    subject['namespace'] = self.namespace
            if obj['kind'] == 'ClusterRole':
                self.cluster_objects.append(('ClusterRole', obj['metadata']['name']))
            utils.create_from_dict(self.api, obj, namespace=self.namespace)
        request = {'spec': {'expirationSeconds': 3600}}
        token = self.core.create_namespaced_service_account_token('sre-runbooks', self.namespace, request,
                                                                  _request_timeout=30).status.token
        kubeconfig = yaml.safe_load(open(KUBECONFIG, encoding='utf-8'))
        context = next(c['context'] for c in kubeconfig['contexts']
                       if c['name'] == (CONTEXT or kubeconfig['current-context']))
        cluster = next(c['cluster'] for c in kubeconfig['clusters'] if c['name'] == context['cluster'])
        ca = base64.b64decode(cluster['certificate-authority-data']).decode() \
            if 'certificate-authority-data' in cluster else open(cluster['certificate-authority'], encoding='utf-8').read()
        self.kubernetes_credential = {'host': cluster['server'], 'bearer_token': token, 'verify_ssl': True,
                                      'ssl_ca_cert': ca}

    def inventory(self, source='inventories/kubernetes/hosts.yml'):
        """The inventory as AWX imports it, made this demo's (its namespace, its channels, the state
        directories the jobs share), without what the credentials give."""
        inventory = exported_inventory(source)
        group_vars = inventory['all']['vars']
        for name in SECRETS:
            group_vars.pop(name)
        group_vars.update({k: v for k, v in self.channels.items() if k != 'standin'})
        # Persistent across jobs, as AWX_ISOLATION_SHOW_PATHS (or a container group's volume) makes them.
        group_vars.update(runbook_state_dir=str(self.state_dir), mitigate_state_dir=str(self.state_dir / 'locks'),
                          service_down_state_dir=str(self.state_dir / 'locks'),
                          communicate_report_dir=str(self.state_dir / 'documents'))
        host = inventory['_meta']['hostvars'][GATEWAY]
        if 'runbook_kubernetes' in host:
            host['runbook_kubernetes'] = dict(host['runbook_kubernetes'], namespace=self.namespace)
        return inventory

    def channel_credentials(self):
        return [(credential_type('sre.runbooks Slack'), {'token': SLACK_TOKEN, 'channel': 'C0AWXINCIDENT'}),
                (credential_type('sre.runbooks PagerDuty'), {'routing_key': 'awxroutingkey00000000000000000001'}),
                (credential_type('sre.runbooks Statuspage'), {'api_key': 'awx-statuspage-key', 'page_id': 'sre-awx'})]

    def credentials(self):
        return [(credential_type('sre.runbooks Prometheus'), {'url': self.prometheus}),
                ('kubernetes_bearer_token', self.kubernetes_credential)] + self.channel_credentials()

    def workflow(self, approve):
        """One run of the workflow, its survey answered for the gateway: the nodes that ran, and each
        job's (template, status, artifacts, output, seconds, private data dir)."""
        jobs = []

        def launch(name, variables):
            status, artifacts, output, seconds, private = run_job(
                job_template(name), image=EE, inventory=self.inventory(), variables=dict(variables, service=GATEWAY),
                credentials=self.credentials(), workdir=self.jobs_dir, mounts=[str(self.state_dir)])
            assert self.kubernetes_credential['bearer_token'] not in output and SLACK_TOKEN not in output
            jobs.append((name, status, artifacts, output, seconds, private))
            return status == 'successful', artifacts

        ran = run_workflow(config()['sre_awx_workflow'], launch, lambda node: approve)
        for name, status, _artifacts, _output, seconds, _private in jobs:
            print('%-50s %-10s %6.1f s' % (name, status, seconds))
        return ran, jobs


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    kube = AwxDemo()
    kube.state_dir = tmp_path_factory.mktemp('awx-state')
    kube.jobs_dir = tmp_path_factory.mktemp('awx-jobs')
    kube.start_channels()
    kube.create()
    try:
        kube.grant_the_runbook()
        kube.until_the_alert()
        yield kube
    finally:
        kube.delete()


def incident_of(job):
    return job[2]['runbook_incidents'][GATEWAY]


def test_the_execution_environment_holds_the_collection_and_everything_it_imports():
    listed = in_image('ansible-doc', '-l', 'sre.runbooks')
    assert sorted(line.split()[0].split('.')[-1] for line in listed.splitlines() if line.strip()) == MODULES, listed
    version = yaml.safe_load((ROOT / 'galaxy.yml').read_text())['version']
    assert 'sre.runbooks %s' % version in ' '.join(in_image('ansible-galaxy', 'collection', 'list', 'sre.runbooks').split())
    # Every Python file of the collection: modules, module_utils, the roles' filters, action plugins.
    utils = sorted('.'.join(p.relative_to(ROOT).with_suffix('').parts) for p in (ROOT / 'plugins').rglob('*.py')
                   if p.name != '__init__.py')
    imported = in_image('env', 'PYTHONPATH=/usr/share/ansible/collections', 'python3', '-c',
                        'import importlib, sys, kubernetes, jmespath\n'
                        'for name in sys.argv[1:]: importlib.import_module("ansible_collections.sre.runbooks." + name)\n'
                        'print(len(sys.argv) - 1, "imported")', *utils)
    assert imported.strip() == '%d imported' % len(utils)
    versions = in_image('ansible', '--version') + in_image('ansible-runner', '--version')
    pins = dict(line.split('==') for line in (ROOT / 'requirements.txt').read_text().splitlines() if '==' in line)
    assert 'core %s]' % pins['ansible-core'] in versions and pins['ansible-runner'] in versions, versions


def test_a_denied_approval_changes_nothing_and_says_so(demo):
    before = demo.deployment()
    ran, jobs = demo.workflow(approve=False)
    assert ran == [('diagnose', True), ('approval', False), ('not-approved', True)], ran
    diagnosed, ended = incident_of(jobs[0]), incident_of(jobs[1])
    assert diagnosed['outcome'] == 'advised' and diagnosed['diagnosis']['action']['name'] == 'rollback', jobs[0][3]
    assert diagnosed['diagnosis']['action']['params']['to_revision'] == 1
    assert ended['id'] == diagnosed['id'] and ended['outcome'] == 'advised'
    last = ended['mitigation']['attempts'][-1]
    assert last['reason'].startswith('not approved: the approval node of the AWX workflow') and not last['acted']
    assert demo.deployment()['spec']['template'] == before['spec']['template']
    assert demo.deployment()['metadata']['annotations'][REVISION] == '2'
    document = open(ended['report']['path'], encoding='utf-8').read()
    assert 'not approved: the approval node of the AWX workflow was denied or timed out' in document
    slack = [what for api, what, _thread in told(demo.journal()) if api == 'slack' and not what.startswith('reaction')]
    assert slack.count('🔥 INCIDENT: High Error Rate - Inference Gateway') == 1, slack
    texts = [e['body']['text'] for e in demo.journal() if e['api'] == 'slack' and e['path'].endswith('chat.postMessage')]
    assert 'not approved, not applied' in texts[-1], texts[-1]


def test_an_approved_rollback_is_taken_verified_and_resolved_in_the_same_incident(demo):
    ran, jobs = demo.workflow(approve=True)
    assert ran == [('diagnose', True), ('approval', True), ('mitigate', True), ('resolve', True)], ran
    diagnosed, acted, resolved = (incident_of(job) for job in jobs)
    # The mitigate node acted on the approved diagnosis, the rollback to revision 1, and verified it.
    attempt = acted['mitigation']['attempts'][-1]
    assert attempt['action'] == diagnosed['diagnosis']['action'] and attempt['acted'], acted['mitigation']
    assert acted['outcome'] == 'resolved' and acted['verify']['recovered'], acted.get('verify')
    deployment = demo.deployment()
    assert deployment['spec']['template']['spec']['containers'][0]['image'] == GOOD
    assert deployment['metadata']['annotations'][REVISION] == '3'
    assert resolved['outcome'] == 'resolved' and resolved['id'] == diagnosed['id'] == acted['id']
    assert 'slo' in resolved
    # Both workflows, five jobs, one incident: one thread, resolved at the end; the page resolved.
    sent = told(demo.journal())
    slack = [s[1:] for s in sent if s[0] == 'slack' and not s[1].startswith('reaction')]
    assert [what for what, _thread in slack].count('🔥 INCIDENT: High Error Rate - Inference Gateway') == 1, slack
    assert slack[-1][0] == '✅ RESOLVED' and {thread for _what, thread in slack[1:]} == {slack[1][1]}, slack
    assert [s[1] for s in sent if s[0] == 'pagerduty'][-1] == 'resolve', sent
    assert [s[1] for s in sent if s[0] == 'statuspage'][-1] == 'resolved', sent
    record = json.loads((demo.state_dir / 'incidents' / ('%s.json' % GATEWAY)).read_text())
    assert record['status'] == 'closed' and record['id'] == resolved['id'], record
    assert BAD not in json.dumps(deployment['spec']['template'])


def test_preflight_reaches_the_docker_host_over_ssh_and_prometheus_with_a_token(demo, tmp_path):
    """The Preflight job template on the compose rig (read-only), with the docker host over SSH and
    Prometheus behind HTTPS, a bearer token and a private CA, each from its credential type: the
    key, the pinned host key and the CA are files of the job, as AWX writes them."""
    key = tmp_path / 'id_ed25519'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'sre-runbooks-awx-test', '-f', str(key)],
                   check=True, timeout=30)
    kind, host_key = (SSH_DIR / 'host_ed25519_key.pub').read_text().split()[:2]
    authorized = SSH_DIR / 'authorized_keys'
    before = authorized.read_text()
    proxy = AuthProxy(tmp_path, token='awx-prometheus-token')
    try:
        authorized.write_text(before + (tmp_path / 'id_ed25519.pub').read_text())
        inventory = demo.inventory('inventories/compose/hosts.yml')
        inventory['_meta']['hostvars'][GATEWAY].update(ansible_connection='ssh', ansible_host='127.0.0.1', ansible_port=2222,
                                                       ansible_python_interpreter='/usr/bin/python3')
        credentials = [(credential_type('sre.runbooks Prometheus'),
                        {'url': proxy.url, 'bearer_token': 'awx-prometheus-token', 'ca_certificate': open(proxy.ca).read()}),
                       (credential_type('sre.runbooks docker host over SSH'),
                        {'username': 'root', 'ssh_key_data': key.read_text(),
                         'known_hosts': '[127.0.0.1]:2222 %s %s' % (kind, host_key)})] + demo.channel_credentials()
        sessions = ssh_sessions()
        _status, _artifacts, output, _seconds, _private = run_job(
            job_template('Preflight'), image=EE, inventory=inventory, variables={'service': GATEWAY},
            credentials=credentials, workdir=tmp_path)
    finally:
        authorized.write_text(before)
        proxy.close()
    assert re.search(r'PASS  docker      compose service   inference-gateway in compose project sre-demo', output), output
    assert 'PASS  prometheus  reachable         %s (' % proxy.url in output and 'bearer token' in output, output
    assert ssh_sessions() > sessions and proxy.passed > 0 and proxy.refused == 0
    assert 'awx-prometheus-token' not in output and 'PRIVATE KEY' not in output


@pytest.mark.parametrize('name,answers,extra,outcome', [
    ('High Error Rate - mitigate', {'mitigate_mode': 'auto', 'mitigate_max_actions': 2, 'mitigate_max_attempts': 2,
                                    'mitigate_max_replicas': 10, 'mitigate_allow_partial': 'false'}, {}, 'recovered'),
    ('Rollback', {'mitigate_mode': 'advise', 'revision': 3}, {}, 'advised'),
    # The workflow rolled back less than the demo's cooldown (60 s) ago: without this launch-time
    # extra var (the templates ask for variables), the guardrail refuses, as it should.
    ('Scale', {'mitigate_mode': 'auto', 'replicas': '+1', 'mitigate_max_replicas': 10}, {'mitigate_cooldown': '0s'},
     'resolved')])
def test_the_other_job_templates_run_with_their_survey_s_answers(demo, name, answers, extra, outcome):
    """On the recovered demo, with the answers as AWX gives them (integers, choices as strings, an
    optional question left out): the whole runbook finds nothing to do, Rollback advises the
    revision asked for, Scale acts."""
    template = job_template(name)
    asked = {q['variable']: q['required'] for q in template['survey']}
    assert set(answers) | {'service'} <= set(asked) and {v for v, required in asked.items() if required} <= set(answers) | {'service'}
    status, artifacts, output, _seconds, _private = run_job(
        template, image=EE, inventory=demo.inventory(), variables=dict(answers, service=GATEWAY, **extra),
        credentials=demo.credentials(), workdir=demo.jobs_dir, mounts=[str(demo.state_dir)])
    assert status == 'successful', output
    incident = artifacts['runbook_incidents'][GATEWAY]
    assert incident['outcome'] == outcome, output
    if name == 'High Error Rate - mitigate':
        assert 'mitigation' not in incident
    else:
        attempt = incident['mitigation']['attempts'][-1]
        assert attempt['action']['name'] == name.lower() and attempt['acted'] == (outcome == 'resolved'), attempt
        assert name != 'Rollback' or attempt['action']['params']['to_revision'] == 3
