"""The one exception type that the CLI turns into a single line on stderr and exit code 2."""


class UserError(Exception):
    """A problem the user can fix: a bad option, a missing or corrupt file, a bad config."""
