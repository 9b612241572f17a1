# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The small files the collection keeps on a docker host (override file, deploy history, locks,
ledger): read whole, written whole or not at all, so a crash never leaves half a file; and read,
decided on and written by one process at a time (serialized)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ansible_collections.sre.runbooks.plugins.module_utils.common.errors import RunbookError


class StateError(RunbookError):
    """A state file that cannot be read or written; the message names it and what to check."""


def read_text(path: str) -> str | None:
    """The file's text as it is (line ends untouched), None when it does not exist."""
    try:
        with open(path, encoding='utf-8', newline='') as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StateError('cannot read %s: %s' % (path, err))


def read_json(path: str, default: Any) -> Any:
    """The JSON document at path, default when absent."""
    text = read_text(path)
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError as err:
        raise StateError('%s is not valid JSON (%s): move it aside to start afresh' % (path, err))


def write_atomic(path: str, text: str, mode: int = 0o644, hint: str = 'check state_dir and its permissions') -> None:
    """Writes the file through a temporary file in the same directory and a rename; a failure
    names the file and `hint`."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
        try:
            with os.fdopen(handle, 'w', encoding='utf-8', newline='') as out:
                out.write(text)
            os.chmod(temp, mode)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = 'free space on the filesystem of %s (df -h %s)' % (directory, directory)
        raise StateError('cannot write %s: %s: %s' % (path, err, hint))


def write_json(path: str, document: Any, mode: int = 0o644) -> None:
    write_atomic(path, json.dumps(document, indent=2, sort_keys=True) + '\n', mode)


@contextmanager
def serialized(path: str) -> Iterator[None]:
    """One process at a time between reading `path` and writing what it decided: an flock on
    `path`.guard, held until the block ends (or the process dies), on the host the module runs on."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        guard = open(path + '.guard', 'a', encoding='utf-8')
    except OSError as err:
        raise StateError('cannot lock %s: %s: check state_dir and its permissions' % (path, err))
    with guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        yield
