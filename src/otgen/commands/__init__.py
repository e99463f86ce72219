"""One module per ``otgen`` subcommand; see :mod:`otgen.cli` for the contract."""
