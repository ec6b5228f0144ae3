"""The exceptions the CLI reports in one line: a `UserError` (exit code 2), and a training
that diverged (exit code 1: a valid value that trains badly is not the user's error)."""


class UserError(Exception):
    """A problem the user can fix: a bad option, a missing or corrupt file, a bad config."""


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite."""
