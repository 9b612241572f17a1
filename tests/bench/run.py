"""make bench: the runbook's speed on the real rig, against the targets in docs/bench.md.

Prints one table (measure, ours, baseline, ratio, target) and the per-run figures; asserts nothing.
(a) alert firing -> diagnosis and -> runbook end (advise mode), after a bad deploy as `make demo`
does; (c) right after, in the same state, the same evidence gathered by
tests/bench/naive_evidence.yml (uri and command tasks); (b) each fault of --faults injected ->
error rate verified (auto mode), with tests/scenarios/run.py; (d) the fleet: 1, 5 and 20 services
alerting at once through one failing dependency (tests/integration/storm_rig.py: a backfilled
Prometheus, stand-ins of its own), one run over all of them, to the end of the run in advise mode,
when every service is diagnosed. Ends with `demo/rig.sh clear`. Exits 1 when a step fails.

    python tests/bench/run.py [--runs N] [--faults FAULT ...]
    python tests/bench/run.py --only baseline     (c) alone, on the rig as it is: changes nothing
    python tests/bench/run.py --only fleet        (d) alone: changes nothing on the rig
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location('scenarios', HERE.parent / 'scenarios' / 'run.py')
scenarios = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scenarios)

ROOT = scenarios.ROOT
NAIVE = str(HERE / 'naive_evidence.yml')


def naive_evidence():
    """Wall time of one run of the naive playbook."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    started = time.time()
    proc = subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), NAIVE,
                           '-i', str(ROOT / 'inventories' / 'compose'),
                           '-e', 'service=inference-gateway'],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
                          check=False)
    took = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError('the naive playbook failed (rc %s):\n%s'
                           % (proc.returncode, proc.stdout[-4000:] + proc.stderr[-2000:]))
    return took


FLEET_SIZES = (1, 5, 20)


def fleet(args, workdir, figures):
    """(d): the wall time of one advise run over N services of the storm, for each N."""
    sys.path.insert(0, str(ROOT / 'tests' / 'integration'))
    from storm_rig import FLEET, Storm  # pylint: disable=import-outside-toplevel
    directory = Path(workdir) / 'fleet'
    directory.mkdir()
    storm = Storm(directory)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    try:
        for n in FLEET_SIZES:
            for i in range(args.runs):
                inventory = storm.inventory(FLEET[:n], name='fleet-%d-%d' % (n, i))
                started = time.time()
                proc = subprocess.run([str(Path(sys.executable).parent / 'ansible-playbook'), 'playbooks/high_error_rate.yml',
                                       '-i', str(inventory), '-e', 'service=%s' % ','.join(FLEET[:n]),
                                       '-e', 'mitigate_mode=advise'],
                                      capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False)
                took = time.time() - started
                if proc.returncode != 0:
                    raise RuntimeError('the fleet run over %d services failed (rc %s):\n%s'
                                       % (n, proc.returncode, proc.stdout[-4000:] + proc.stderr[-2000:]))
                figures['fleet'].setdefault(n, []).append(took)
                print('fleet of %d services, run %d: all diagnosed, run ended at %.2f s' % (n, i + 1, took), flush=True)
    finally:
        storm.stop()


def measure(args, workdir, figures):
    """Fills figures as it goes, so that a failed step still leaves what was measured."""
    if not args.only:
        scenarios.rig('clear')
        scenarios.rig('wait-clear', 180)
        scenarios.rig('wait-baseline', scenarios.CLEAN_SECONDS)
        scenarios.rig('deploy', 'v1.2.3')
        scenarios.rig('wait-alert', 180)
        for i in range(args.runs):
            _incident, to_diagnosis, took, _output = scenarios.runbook(workdir, 'advise')
            figures['diagnosis'].append(to_diagnosis)
            figures['end'].append(took)
            print('runbook run %d: diagnosis at %.2f s, ended at %.2f s'
                  % (i + 1, to_diagnosis, took), flush=True)
    for i in range(args.runs):
        figures['baseline'].append(naive_evidence())
        print('naive playbook run %d: %.2f s' % (i + 1, figures['baseline'][-1]), flush=True)
    if not args.only:
        for fault in args.faults:
            row = scenarios.run(fault, workdir, 'auto')
            figures['faults'].append(row)
            print('fault %s: observable after %.1f s, diagnosis at %.1f s of the run, ended at '
                  '%.1f s, outcome %s%s' % (fault, row['observable_s'], row['diagnosis_s'],
                                            row['fault_to_end_s'], row['outcome'],
                                            '' if row['ok'] else ' (not as expected)'),
                  flush=True)


def attempt(step, *args):
    """Runs a step; False, once what failed is printed, when it fails."""
    try:
        step(*args)
        return True
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        print('FAILED: %s' % err, flush=True)
        return False


def table(args, figures):
    def median(values):
        return statistics.median(values) if values else None

    def seconds(value):
        return '-' if value is None else '%.2f s' % value

    end, baseline = median(figures['end']), median(figures['baseline'])
    n = 'median of %d' % args.runs
    rows = [
        ('alert -> diagnosis (%s)' % n, seconds(median(figures['diagnosis'])), '-', '-', '< 3 s'),
        ('alert -> runbook end (%s)' % n, seconds(end), '-', '-', '-'),
        ('evidence: runbook end vs naive playbook (%s)' % n, seconds(end), seconds(baseline),
         '-' if end is None or baseline is None else '%.1fx' % (baseline / end), '>= 3x'),
    ]
    for row in figures['faults']:
        ours = '%.1f s' % row['fault_to_end_s']
        if row['outcome'] != 'resolved':
            ours += ' (%s)' % row['outcome']
        rows.append(('%s injected -> error rate verified < 1%%' % row['fault'], ours, '-', '-',
                     '< 120 s'))
    one = median(figures['fleet'].get(1, []))
    for size, runs in sorted(figures['fleet'].items()):
        took = median(runs)
        rows.append(('fleet: %d services alerting -> all diagnosed (%s)' % (size, n), seconds(took), seconds(one),
                     '%.1fx' % (took / one) if one else '-', '< 4x' if size == max(FLEET_SIZES) else '-'))
    header = ('measure', 'ours', 'baseline', 'ratio', 'target')
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for r in [header, tuple('-' * w for w in widths)] + rows:
        print('  '.join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=3, help='runs of (a) and (c) (default 3)')
    parser.add_argument('--faults', nargs='+', choices=list(scenarios.EXPECTED), metavar='FAULT',
                        default=['bad-deploy'], help='faults of (b): %s (default bad-deploy)'
                        % ', '.join(scenarios.EXPECTED))
    parser.add_argument('--only', choices=['baseline', 'fleet'],
                        help='baseline: only (c), against the rig as it is (no rig change); fleet: only (d)')
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error('--runs must be at least 1')
    print('sre.runbooks bench: %s, %d cores' % (
        datetime.now(timezone.utc).isoformat(timespec='seconds'), os.cpu_count()), flush=True)
    figures = {'diagnosis': [], 'end': [], 'baseline': [], 'faults': [], 'fleet': {}}
    ok = False
    try:
        with tempfile.TemporaryDirectory() as workdir:
            ok = args.only == 'fleet' or attempt(measure, args, workdir, figures)
            if args.only in (None, 'fleet'):
                ok = attempt(fleet, args, workdir, figures) and ok
    finally:
        if not args.only:
            ok = attempt(scenarios.rig, 'clear') and ok
    print()
    table(args, figures)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
