"""Errors a user can act on: the one family the command line turns into a message and exit status 2.

Each layer of the economy raises its own subclass of :class:`InputError`, whose message names the file,
the key, the bad value and the fix:

* :class:`royaltysim.config.ScenarioError` -- a scenario file or dict is invalid (every problem listed
  with its key path and the allowed values); also unreadable YAML (:mod:`royaltysim.safe_yaml`);
* :class:`royaltysim.sweep.SweepError` -- a sweep declaration, its size, its workers or its scheduler;
* :class:`royaltysim.resources.ResourceError` -- a scenario needs more memory or time than allowed;
* :class:`royaltysim.atomic.OutputFolderError` -- ``--out`` cannot be written, or would overwrite results.

Anything else that escapes is a bug in royaltysim, and is shown with its traceback.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(Exception):
    """A problem with what the user gave (a file, a value, a folder); the message says how to fix it."""
