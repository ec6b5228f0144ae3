"""The exceptions the CLI reports in one line: a `UserError` (exit code 2), a training
that diverged (exit code 1: a valid value that trains badly is not the user's error), and
a command stopped by a signal (exit code 128 + the signal's number)."""


class UserError(Exception):
    """A problem the user can fix: a bad option, a missing or corrupt file, a bad config."""


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite."""


class Interrupted(Exception):
    """A signal stopped the command after it had opened its runs and closed them; the
    message says how to resume."""
