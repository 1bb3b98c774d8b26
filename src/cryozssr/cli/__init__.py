"""The ``cryozssr`` command line: one module per command, registered in :mod:`cryozssr.cli.app`."""
