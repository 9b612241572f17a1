"""make scenarios: each demo fault in turn on the real rig, diagnosed by the runbook in advise mode.

For every fault: back to a healthy v1.2.2 stack with a clean baseline, inject the fault, wait until
it is observable (alert firing, or the service down), run playbooks/high_error_rate.yml, and
compare the diagnosis with the cause and action the fault calls for. Prints a table; exits non-zero
when any fault is diagnosed wrong.

    python tests/scenarios/run.py [FAULT ...]     (default: every fault)
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RIG = str(ROOT / 'demo' / 'rig.sh')
CAPTURE = str(ROOT / 'tests' / 'integration' / 'playbooks' / 'capture_incident.yml')

# fault -> (cause, action) the runbook calls for. Runtime faults first: the faults that recreate
# the gateway come last, so that no recent deploy stands next to the runtime ones.
EXPECTED = {
    'endpoint': ('endpoint', 'feature_flag'),
    'dependency': ('dependency', 'circuit_breaker'),
    'saturation': ('saturation', 'resources'),
    'memory': ('saturation', 'resources'),
    'bad-deploy': ('deploy', 'rollback'),
    'crash': ('service_down', 'recreate'),
    'port-conflict': ('service_down', 'free_port'),
}
# The baseline is a 30 s window 60 s back and a deploy counts as the cause of a spike within
# 90 s: a fresh stack waits this long before a fault goes in.
CLEAN_SECONDS = 100


def rig(*args, timeout=600):
    proc = subprocess.run([RIG] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        command = ' '.join(str(a) for a in args)
        raise RuntimeError('rig.sh %s failed:\n%s%s' % (command, proc.stdout, proc.stderr))
    return proc.stdout


def diagnose(workdir):
    out = Path(workdir) / 'incident.json'
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    playbook = str(Path(sys.executable).parent / 'ansible-playbook')
    started = time.monotonic()
    proc = subprocess.run([playbook, CAPTURE, '-i', str(ROOT / 'inventories' / 'compose'),
                           '-e', 'service=inference-gateway', '-e', 'incident_out=%s' % out],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
                          check=False)
    took = time.monotonic() - started
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError('the runbook failed (rc %s):\n%s'
                           % (proc.returncode, proc.stdout[-4000:]))
    return json.loads(out.read_text())['diagnosis'], took, proc.stdout


def run(fault, workdir):
    rig('clear')
    rig('wait-clear', 180)
    rig('wait-baseline', CLEAN_SECONDS)
    started = time.monotonic()
    rig('inject', fault)
    rig('wait-fault', fault, 240)
    observable = time.monotonic() - started
    diagnosis, took, output = diagnose(workdir)
    cause = diagnosis['recommended']['cause']
    action = diagnosis['action']['name']
    return {'fault': fault, 'cause': cause, 'action': diagnosis['action']['description'],
            'ok': (cause, action) == EXPECTED[fault], 'observable_s': observable,
            'diagnosis_s': took, 'output': output}


def main(faults):
    unknown = [f for f in faults if f not in EXPECTED]
    if unknown:
        print('unknown fault(s): %s; known: %s' % (', '.join(unknown), ', '.join(EXPECTED)))
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            for fault in faults:
                try:
                    row = run(fault, workdir)
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    row = {'fault': fault, 'cause': 'ERROR', 'action': str(err).splitlines()[0],
                           'ok': False, 'observable_s': 0.0, 'diagnosis_s': 0.0,
                           'output': str(err)}
                rows.append(row)
                if not row['ok']:
                    print(row['output'][-3000:])
        finally:
            rig('clear')
    header = ('fault', 'cause', 'recommended action', 'observed', 'diagnosis', 'verdict')
    print('\n%-14s %-13s %-48s %10s %10s  %s' % header)
    for row in rows:
        print('%-14s %-13s %-48s %9.1fs %9.1fs  %s' % (
            row['fault'], row['cause'], row['action'][:48], row['observable_s'],
            row['diagnosis_s'], 'ok' if row['ok'] else 'WRONG (expected %s / %s)'
            % EXPECTED[row['fault']]))
    wrong = [r['fault'] for r in rows if not r['ok']]
    print('\n%d passed, %d failed' % (len(rows) - len(wrong), len(wrong)))
    return 1 if wrong else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:] or list(EXPECTED)))
