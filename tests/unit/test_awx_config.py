"""extensions/awx/config.yml against the collection: every job template's playbook exists, every
survey variable is one that the playbook or a role it runs accepts (the same type, choices among
the role's), every credential injector sets a variable that the roles or playbooks read, the
workflow's nodes are the job templates, and the EE is the image that `make ee` builds with the
versions requirements.txt pins. Its run, as AWX runs it: test_k8s_awx_workflow_real_cluster.py."""

import re

import pytest
import yaml

from ansible_collections.sre.runbooks.plugins.module_utils.api.client import ENDPOINT_ARGS
from awx_controller import SANDBOX, config
from conftest import ROOT

CONFIG = config()
TEMPLATES = {t['name']: t for t in CONFIG['sre_awx_job_templates']}
SURVEY_TYPES = {'text': 'str', 'textarea': 'str', 'password': 'str', 'integer': 'int', 'float': 'float'}


def role_options(role):
    return yaml.safe_load((ROOT / 'roles' / role / 'meta' / 'argument_specs.yml').read_text())['argument_specs']['main']['options']


ROLES = sorted(p.name for p in (ROOT / 'roles').iterdir() if (p / 'meta' / 'argument_specs.yml').exists())
ALL_OPTIONS = {name: spec for role in ROLES for name, spec in role_options(role).items()}


def files_of(playbook):
    """The playbook, the playbooks it imports, and the task files of the roles they run (and the
    roles those run): the text of each, and the roles."""
    texts, roles, todo = [], set(), [ROOT / playbook]
    while todo:
        path = todo.pop()
        text = path.read_text()
        texts.append(text)
        todo += [path.parent / m for m in re.findall(r'import_playbook: (\S+\.yml)', text)]
        for role in set(re.findall(r'name: sre\.runbooks\.(\w+)', text)) - roles:
            roles.add(role)
            todo += sorted((ROOT / 'roles' / role / 'tasks').glob('*.yml'))
    return '\n'.join(texts), roles


@pytest.mark.parametrize('name', sorted(TEMPLATES))
def test_each_survey_asks_what_the_playbook_accepts(name):
    template = TEMPLATES[name]
    assert (ROOT / template['playbook']).is_file(), template['playbook']
    text, roles = files_of(template['playbook'])
    options = {k: v for role in roles for k, v in role_options(role).items()}
    asked = [q['variable'] for q in template['survey']]
    assert asked[0] == 'service' and len(set(asked)) == len(asked)
    for question in template['survey'] + [{'variable': k, 'fixed': v} for k, v in (template.get('extra_vars') or {}).items()]:
        variable = question['variable']
        spec = options.get(variable)
        if spec is None:  # a variable of the playbook itself, such as service or revision
            assert re.search(r'\b%s\b \| default|\{\{ %s\b|%s in groups' % ((re.escape(variable),) * 3), text), (name, variable)
            continue
        if 'fixed' in question:
            assert question['fixed'] in spec.get('choices', [question['fixed']]), (name, variable)
        elif question['type'] == 'multiplechoice' and spec['type'] == 'bool':
            assert set(question['choices']) <= {'true', 'false'}, (name, variable)
        elif question['type'] == 'multiplechoice':
            assert spec['type'] == 'str' and set(question['choices']) <= set(spec['choices']), (name, variable, spec)
            assert question['default'] in question['choices']
        else:
            assert SURVEY_TYPES[question['type']] == spec['type'], (name, variable, spec)


def test_each_injector_sets_what_the_roles_or_playbooks_read():
    playbooks = '\n'.join(p.read_text() for p in (ROOT / 'playbooks').glob('*.yml'))
    for ctype in CONFIG['sre_awx_credential_types']:
        fields = {f['id'] for f in ctype['inputs']['fields']}
        assert set(ctype['inputs'].get('required', [])) <= fields, ctype['name']
        injectors = ctype['injectors']
        for variable, value in injectors['extra_vars'].items():
            if variable.startswith('ansible_'):
                continue  # the connection to the docker host
            assert variable in ALL_OPTIONS or re.search(r'\b%s\b' % variable, playbooks), (ctype['name'], variable)
            if isinstance(value, dict):  # runbook_prometheus_auth: the endpoint options of the Prometheus modules
                assert set(value) <= set(ENDPOINT_ARGS), (ctype['name'], value)
        # Every template parses in AWX's sandbox and names only the type's fields (and tower.filename).
        for template in list(injectors.get('file', {}).values()) + list(_leaves(injectors['extra_vars'])):
            SANDBOX.parse(template)
            names = set(re.findall(r'\{\{\s*([a-z_]+)', template)) | set(re.findall(r'if ([a-z_]+) is defined', template))
            assert names <= fields | {'tower'}, (ctype['name'], template)


def _leaves(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    else:
        yield node


def test_the_workflow_runs_the_job_templates_with_an_approval_and_its_failure_path():
    nodes = {n['identifier']: n for n in CONFIG['sre_awx_workflow']['nodes']}
    for node in nodes.values():
        template = node['unified_job_template']
        if template['type'] == 'job_template':
            assert template['name'] in TEMPLATES, template
        for edges in (node.get('related') or {}).values():
            assert {e['identifier'] for e in edges} <= set(nodes), node
    approval = next(n for n in nodes.values() if n['unified_job_template']['type'] == 'workflow_approval')
    assert approval['unified_job_template']['timeout'] > 0
    denied = nodes[approval['related']['failure_nodes'][0]['identifier']]
    assert denied['extra_data'] == {'runbook_approval': 'not_approved'}
    assert 'runbook_approval' in (ROOT / TEMPLATES[denied['unified_job_template']['name']]['playbook']).read_text()
    mitigate = nodes[approval['related']['success_nodes'][0]['identifier']]
    assert TEMPLATES[mitigate['unified_job_template']['name']]['playbook'] == 'playbooks/mitigate.yml'
    assert [e['identifier'] for e in mitigate['related']['always_nodes']] == ['resolve']


def test_the_execution_environment_is_the_image_make_ee_builds_with_the_pinned_versions():
    version = yaml.safe_load((ROOT / 'galaxy.yml').read_text())['version']
    assert CONFIG['sre_awx_execution_environment']['image'] == 'sre-runbooks/ee:%s' % version
    assert 'EE_IMAGE=sre-runbooks/ee:$VERSION' in (ROOT / 'extensions' / 'ee' / 'build.sh').read_text()
    ee = yaml.safe_load((ROOT / 'execution-environment.yml').read_text())
    pins = dict(line.split('==') for line in (ROOT / 'requirements.txt').read_text().splitlines() if '==' in line)
    assert ee['dependencies']['ansible_core']['package_pip'] == 'ansible-core==%s' % pins['ansible-core']
    assert ee['dependencies']['ansible_runner']['package_pip'] == 'ansible-runner==%s' % pins['ansible-runner']
    # The collection claims the ansible-core it is tested on (docs/reliability.md).
    assert yaml.safe_load((ROOT / 'meta' / 'runtime.yml').read_text())['requires_ansible'] == '>=%s' % pins['ansible-core']
    for line in (ROOT / 'meta' / 'ee-requirements.txt').read_text().splitlines():
        if '==' in line:
            name, version = line.split('==')
            assert pins[name] == version, line


def test_the_eda_controller_rulebook_launches_the_workflow_where_the_other_runs_the_playbook():
    from ansible_rulebook.validators import Validate
    rulebooks = ROOT / 'extensions' / 'eda' / 'rulebooks'
    plain, controller = (yaml.safe_load((rulebooks / name).read_text())
                         for name in ('high_error_rate.yml', 'high_error_rate_controller.yml'))
    Validate.rulebook(controller)
    assert controller[0]['sources'] == plain[0]['sources']
    assert [(r['condition'], r.get('throttle')) for r in controller[0]['rules']] == \
        [(r['condition'], r.get('throttle')) for r in plain[0]['rules']]
    launch = controller[0]['rules'][0]['action']['run_workflow_template']
    assert launch['name'] == CONFIG['sre_awx_workflow']['name']
    runs = plain[0]['rules'][0]['action']['run_playbook']['extra_vars']
    assert {k: runs[k] for k in launch['job_args']['extra_vars']} == launch['job_args']['extra_vars']
    # Variables beyond the workflow's survey are accepted at launch.
    workflow_task = next(t for t in yaml.safe_load((ROOT / 'extensions' / 'awx' / 'controller.yml').read_text())[0]['tasks']
                         if 'awx.awx.workflow_job_template' in t)
    assert workflow_task['awx.awx.workflow_job_template']['ask_variables_on_launch'] is True
