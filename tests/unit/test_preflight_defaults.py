"""The preflight role checks what the runbook's roles would use: each of its defaults follows a
role variable with that role's own default, so that an inventory that sets nothing gets the same
values in both."""

import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
FOLLOWS = re.compile(r'^\{\{ (\w+) \| default\((.+)\) \}\}$')


def follows(value):
    """(variable, default) of every "{{ var | default(value) }}" in a default, nested ones too."""
    if isinstance(value, dict):
        return [f for v in value.values() for f in follows(v)]
    if isinstance(value, list):
        return [f for v in value for f in follows(v)]
    match = FOLLOWS.match(value) if isinstance(value, str) else None
    return [(match.group(1), ast.literal_eval(match.group(2)))] if match else []


def test_each_preflight_default_is_the_default_of_the_role_it_follows():
    defaults = yaml.safe_load((ROOT / 'roles/preflight/defaults/main.yml').read_text())
    pairs = [f for value in defaults.values() for f in follows(value)]
    checked = 0
    for variable, fallback in pairs:
        role = variable.split('_')[0]
        if role == 'runbook':  # inventory-wide settings, no role of their own
            continue
        own = yaml.safe_load((ROOT / 'roles' / role / 'defaults/main.yml').read_text())
        assert variable in own, '%s follows %s, which roles/%s does not define' % ('preflight', variable, role)
        assert own[variable] == fallback, '%s: roles/%s says %r, preflight falls back to %r' % (
            variable, role, own[variable], fallback)
        checked += 1
    assert checked >= 20
