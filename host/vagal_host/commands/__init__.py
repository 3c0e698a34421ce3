"""One module per `vagal` subcommand; each defines NAME, HELP, add_arguments(parser) and run(args)."""
