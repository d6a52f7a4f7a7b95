"""The one exception type users see: a clear one-line message, exit code 2 from the CLI."""


class MelodiffError(Exception):
    """A user-facing error (bad input file, bad argument, bad checkpoint).

    The CLI prints ``melodiff: error: <message>`` and exits with code 2; no traceback.
    """


class MeterOutsideModel(MelodiffError):
    """A meter the model (or any model) does not make; the message names the meters it does."""
