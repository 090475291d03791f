"""One module per `akri` subcommand (see akri.cli.COMMANDS)."""
