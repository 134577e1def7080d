"""User-facing errors: one clear line naming the problem and the fix, no traceback."""


class UserError(Exception):
    """Bad input from the user (config, paths, game names). The launcher prints it as one line."""
