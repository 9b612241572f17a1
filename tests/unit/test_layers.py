"""The layout of plugins/module_utils is a rule, checked here: analysis/ and render/ are pure and
common/ is below everything; every file at the top is the body of the module of the same name."""

import ast
import pathlib

import pytest

PLUGINS = pathlib.Path(__file__).resolve().parents[2] / 'plugins'
UTILS = PLUGINS / 'module_utils'
PREFIX = 'ansible_collections.sre.runbooks.plugins.module_utils.'
# What each folder may import from module_utils (its own folder always).
ALLOWED = {'common': {'common'}, 'analysis': {'analysis', 'common'}, 'render': {'render', 'common'}}
IO = {'socket', 'subprocess', 'urllib.request', 'http.client', 'requests', 'kubernetes', 'fcntl'}


def imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name


@pytest.mark.parametrize('folder', sorted(ALLOWED))
def test_lower_layers_import_nothing_above_them(folder):
    for path in sorted((UTILS / folder).glob('*.py')):
        for name in imports(path):
            if name.startswith(PREFIX):
                layer = name[len(PREFIX):].split('.')[0]
                assert layer in ALLOWED[folder], '%s imports %s' % (path.name, name)


@pytest.mark.parametrize('folder', ['analysis', 'render'])
def test_the_pure_layers_do_no_io(folder):
    for path in sorted((UTILS / folder).glob('*.py')):
        assert not set(imports(path)) & IO, path.name


def test_each_top_level_file_is_the_body_of_its_module():
    bodies = {p.stem for p in UTILS.glob('*.py')}
    modules = {p.stem for p in (PLUGINS / 'modules').glob('*.py')}
    assert bodies <= modules, bodies - modules
    in_process = {p.stem for p in (PLUGINS / 'action').glob('*.py')}
    assert in_process <= bodies, in_process - bodies
