"""Offline stand-in for the get-pip.py bootstrap script that ansible-test downloads.

`make venv` copies it to ~/.ansible/test/cache/get_pip_<version>.py, where ansible-test looks
before downloading. It installs pip with ensurepip, in a child process (so the machine's pip
settings, CA bundle included, stay in force), then runs `pip install` with the arguments
ansible-test gave, less the options only get-pip.py knows.
"""

import subprocess
import sys

GET_PIP_ONLY = {'--no-setuptools', '--no-wheel'}


def main():
    subprocess.run([sys.executable, '-m', 'ensurepip', '--upgrade'], check=True,
                   stdout=subprocess.DEVNULL)
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    sys.exit(subprocess.run([sys.executable, '-m', 'pip', 'install'] + args, check=False).returncode)


if __name__ == '__main__':
    main()
