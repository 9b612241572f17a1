"""Every shell script of the repo passes shellcheck (make deps installs it), and none stops a
process by name: the rigs and the cluster stop what they started by the pid they recorded."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(subprocess.run(['git', 'ls-files', '*.sh', '.ci/run'], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.split())


def test_the_scripts_are_found():
    assert {'demo/rig.sh', 'demo/second-rig.sh', 'tests/lane.sh', '.ci/run'} <= set(SCRIPTS)


@pytest.mark.parametrize('script', SCRIPTS)
def test_shellcheck_is_clean(script):
    proc = subprocess.run(['shellcheck', script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    text = (ROOT / script).read_text()
    assert 'pkill' not in text and 'killall' not in text
