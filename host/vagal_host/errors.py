"""The one exception type the CLI turns into a one-line message and exit status 2."""


class VagalError(Exception):
    """A problem the user can fix (bad file, bad option, no board): shown as one line, no traceback."""
