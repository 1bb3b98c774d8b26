"""Errors a user can act on. The CLI prints their message on one line and exits with status 2."""


class CryoZssrError(Exception):
    """Base class for errors caused by the user's input, options or environment.

    ``option`` names the library option that would fix it (e.g. ``"pixel_size_angstrom"``), in the
    library's words; a front end maps it to its own spelling (the CLI: ``--pixel-size``).
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class InputError(CryoZssrError):
    """An input file is missing, unreadable, corrupt or of the wrong kind."""


class OptionError(CryoZssrError):
    """A command-line option or config value is invalid."""


class OutputError(CryoZssrError):
    """An output cannot be written (unwritable folder, would overwrite an input, ...)."""


class ProcessingError(CryoZssrError):
    """A numeric failure while processing one movie (non-finite values, a singular solve).

    In a batch it is recorded as that movie's failure and the batch goes on.
    """
