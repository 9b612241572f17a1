"""What AWX / Automation Controller does with extensions/awx/config.yml, for the tests (AWX itself
cannot run here, and a mock of its API would prove nothing: docs/awx.md).

- config(): the file, its injector templates (!unsafe for Ansible) kept as plain strings;
- inject(): a credential's injectors rendered as AWX renders them (awx/main/models/credential):
  Jinja's immutable sandbox; a field left empty is undefined; each `file` template written to the
  job's private data dir, named by `tower.filename` (`tower.filename.<name>` for several); `env`
  set in the job's environment; `extra_vars` rendered leaf by leaf (every value a string) into a
  file passed with `-e @`. AWX's built-in Kubernetes bearer token type sets K8S_AUTH_*;
- run_job(): a job template's playbook run as an AWX job runs: ansible-runner with process
  isolation in the execution environment image, the project as git has it, the inventory as
  ansible-inventory exports it (an inventory script, as AWX writes one), the credentials
  injected, and the job's artifacts (set_stats) read from its playbook_on_stats event;
- run_workflow(): the workflow's nodes in AWX's order, success, failure and always edges, each
  node's jobs given the artifacts of the nodes before it, an approval node decided by the test.
"""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import ansible_runner
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / 'extensions' / 'awx' / 'config.yml'
CONTAINER_DATA_DIR = '/runner'
SANDBOX = ImmutableSandboxedEnvironment()


class _Loader(yaml.SafeLoader):
    """config.yml as the tests read it: Ansible's !unsafe marks what AWX renders, not Ansible."""


_Loader.add_constructor('!unsafe', lambda loader, node: (
    loader.construct_mapping(node, deep=True) if isinstance(node, yaml.MappingNode) else loader.construct_scalar(node)))


def config():
    return yaml.load(CONFIG.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader)


def job_template(name):
    return next(t for t in config()['sre_awx_job_templates'] if t['name'] == name)


def credential_type(name):
    return next(t for t in config()['sre_awx_credential_types'] if t['name'] == name)


def _container_path(path):
    return CONTAINER_DATA_DIR + '/' + str(Path(path).relative_to(path.parents[1]))


def _write_private(private, content):
    handle, path = tempfile.mkstemp(dir=private / 'env')
    with os.fdopen(handle, 'w') as out:
        out.write(content)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return Path(path)


def inject(ctype, inputs, private, env, cmdline):
    """The credential of type `ctype` (a config.yml entry, or 'kubernetes_bearer_token') with
    `inputs` injected into the job of `private` (its data dir): env updated, -e @file appended."""
    if ctype == 'kubernetes_bearer_token':
        env.update(K8S_AUTH_HOST=inputs.get('host', ''), K8S_AUTH_API_KEY=inputs.get('bearer_token', ''))
        if inputs.get('verify_ssl') and inputs.get('ssl_ca_cert'):
            env.update(K8S_AUTH_VERIFY_SSL='True',
                       K8S_AUTH_SSL_CA_CERT=_container_path(_write_private(private, inputs['ssl_ca_cert'])))
        else:
            env['K8S_AUTH_VERIFY_SSL'] = 'False'
        return
    tower = SimpleNamespace()
    namespace = {'tower': tower}
    for field in ctype['inputs']['fields']:
        value = inputs.get(field['id'])
        if field.get('type') == 'boolean':
            namespace[field['id']] = bool(value)
        elif value:
            namespace[field['id']] = value + ('\n' if field.get('format') == 'ssh_private_key' and not value.endswith('\n') else '')
    injectors = ctype['injectors']
    for label, template in injectors.get('file', {}).items():
        path = _container_path(_write_private(private, SANDBOX.from_string(template).render(**namespace)))
        if '.' not in label:
            tower.filename = path
        else:
            if not hasattr(tower, 'filename'):
                tower.filename = SimpleNamespace()
            setattr(tower.filename, label.split('.', 1)[1], path)
    for name, template in injectors.get('env', {}).items():
        env[name] = SANDBOX.from_string(template).render(**namespace)

    def build(node):
        if isinstance(node, dict):
            return {build(k): build(v) for k, v in node.items()}
        if isinstance(node, list):
            return [build(v) for v in node]
        return SANDBOX.from_string(node).render(**namespace)

    extra_vars = build(injectors.get('extra_vars', {}))
    if extra_vars:
        path = _write_private(private, yaml.safe_dump(extra_vars))
        os.chmod(path, stat.S_IRUSR)
        cmdline += ['-e', '@' + _container_path(path)]


def project_files():
    """The project as AWX checks it out: the files git has (and new ones not yet committed)."""
    listed = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT, capture_output=True,
                            text=True, check=True, timeout=60).stdout.split('\n')
    return [name for name in listed if name and (ROOT / name).is_file()]


def exported_inventory(source):
    """The inventory that AWX imports from a project source: ansible-inventory --list --export."""
    ansible_inventory = Path(os.environ.get('VIRTUAL_ENV', ROOT / '.venv')) / 'bin' / 'ansible-inventory'
    out = subprocess.run([str(ansible_inventory), '-i', str(ROOT / source), '--list', '--export'], capture_output=True,
                         text=True, check=True, timeout=120, cwd=ROOT).stdout
    return json.loads(out)


def run_job(template, *, image, inventory, variables, credentials, workdir, mounts=(), timeout=900):
    """The job of `template` (config.yml) as AWX runs it, its private data dir made in `workdir`;
    answers (status, artifacts, stdout, seconds, private data dir). `credentials`: (credential
    type or 'kubernetes_bearer_token', inputs) pairs; `variables`: the job's extra vars (survey
    answers, artifacts, node data)."""
    private = Path(tempfile.mkdtemp(prefix='awx-job-', dir=workdir))
    for name in project_files():
        (private / 'project' / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, private / 'project' / name)
    (private / 'env').mkdir()
    (private / 'inventory').mkdir()
    script = private / 'inventory' / 'hosts'
    script.write_text('#!/usr/bin/env python3\nprint(%r)\n' % json.dumps(inventory))
    script.chmod(0o700)
    env, cmdline = {}, []
    for ctype, inputs in credentials:
        inject(ctype, inputs, private, env, cmdline)
    extra_vars = dict(template.get('extra_vars') or {}, **variables)
    started = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(private), playbook=template['playbook'], extravars=extra_vars, envvars=env,
        cmdline=' '.join(cmdline), process_isolation=True, process_isolation_executable='docker',
        container_image=image, container_options=['--network=host'],
        container_volume_mounts=['%s:%s' % (m, m) for m in mounts], quiet=True, timeout=timeout)
    seconds = time.monotonic() - started
    stats = [e for e in runner.events if e.get('event') == 'playbook_on_stats']
    artifacts = (stats[-1]['event_data'].get('artifact_data') or {}) if stats else {}
    return runner.status, artifacts, runner.stdout.read(), seconds, private


def run_workflow(workflow, launch, approve):
    """The workflow's nodes in order from its root: a job node is launch(template name, extra vars)
    -> (ok, artifacts); an approval node is approve(node) -> bool. The artifacts of a node's
    ancestors, its parent's last, go to its jobs, with its extra_data. Answers the nodes run, in
    order, as (identifier, ok)."""
    nodes = {n['identifier']: n for n in workflow['nodes']}
    children = {edge['identifier'] for n in nodes.values() for kind in ('success_nodes', 'failure_nodes', 'always_nodes')
                for edge in (n.get('related') or {}).get(kind, [])}
    pending = [(identifier, {}) for identifier in nodes if identifier not in children]
    ran = []
    while pending:
        identifier, artifacts = pending.pop(0)
        node = nodes[identifier]
        template = node['unified_job_template']
        if template['type'] == 'workflow_approval':
            ok, produced = approve(node), {}
        else:
            ok, produced = launch(template['name'], dict(artifacts, **(node.get('extra_data') or {})))
        ran.append((identifier, ok))
        related = node.get('related') or {}
        following = related.get('success_nodes' if ok else 'failure_nodes', []) + related.get('always_nodes', [])
        pending += [(edge['identifier'], dict(artifacts, **produced)) for edge in following]
    return ran
