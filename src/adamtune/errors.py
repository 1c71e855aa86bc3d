"""The exceptions adamtune raises.

::

    AdamTuneError                      root of everything adamtune raises on purpose
    ├── ConfigError(ValueError)        a bad range, fixed value, tuned set, budget or option
    ├── TargetError(ImportError)       TARGET (file.py:function, module:function) cannot be loaded
    ├── StorageError(OSError)          a storage URL that cannot be opened
    ├── StudyNotFoundError(LookupError) no such study, or several and none named
    ├── StudyMismatchError(ValueError) an existing study was created with another space or seed
    └── TooManyFailuresError(RuntimeError) the objective failed too many times in a row

``Diverged``, ``TrialFailed``, ``Pruned`` and ``Stopped`` are not errors: they are signals that
end a trial. An objective raises ``Diverged`` to say the trial diverged (recorded as infeasible
data) and ``TrialFailed`` to fail it with a reason of its own instead of a traceback;
``trial.report`` raises ``Diverged``, ``Pruned`` (a pruner stopped it) and ``Stopped`` (patience
ran out), and the objective need not catch them. Every leaf also inherits the matching builtin, so
``except ValueError`` keeps working for callers who do not know adamtune.

On the command line every ``AdamTuneError`` prints one line; ``exit_code`` is the status.
"""

from __future__ import annotations


class AdamTuneError(Exception):
    """Root of the exceptions adamtune raises on purpose."""

    exit_code = 2


class ConfigError(AdamTuneError, ValueError):
    """A user-supplied setting is invalid: the message says what was expected and what was given."""


class TargetError(AdamTuneError, ImportError):
    """The objective named on the command line cannot be loaded."""


class StorageError(AdamTuneError, OSError):
    """A storage URL cannot be opened (the message never contains a password)."""


class StudyNotFoundError(AdamTuneError, LookupError):
    """No study of that name, or several studies and none named."""


class StudyMismatchError(AdamTuneError, ValueError):
    """A study of that name exists with another search space or seed."""


class TooManyFailuresError(AdamTuneError, RuntimeError):
    """The objective raised on too many trials in a row: most likely a bug in it."""

    exit_code = 1


class Diverged(Exception):
    """Raise inside an objective to end the trial as diverged (infeasible, kept as data)."""


class TrialFailed(Exception):
    """Raise inside an objective to end the trial as failed, with this message as the reason."""


class Pruned(Exception):
    """Raised by ``trial.report`` when the study's pruner stops the trial (its best value so far
    becomes its value, state pruned)."""


class Stopped(Exception):
    """Raised by ``trial.report`` when the patience rule stops the trial (state complete, value
    the best so far)."""
