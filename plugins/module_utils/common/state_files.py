# -*- coding: utf-8 -*-
# Copyright: sre.runbooks contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The small files the collection keeps on a docker host (override file, deploy history, locks,
ledger): read whole, written whole or not at all, so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
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
        raise StateError('cannot write %s: %s: %s' % (path, err, hint))


def write_json(path: str, document: Any, mode: int = 0o644) -> None:
    write_atomic(path, json.dumps(document, indent=2, sort_keys=True) + '\n', mode)


def create_exclusive(path: str, text: str, mode: int = 0o640) -> bool:
    """Creates path with text unless it exists; False when another process created it first."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    except OSError as err:
        raise StateError('cannot create %s: %s: check state_dir and its permissions' % (path, err))
    with os.fdopen(handle, 'w', encoding='utf-8') as out:
        out.write(text)
    return True
