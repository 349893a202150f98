"""One module per `qtctl` command; `qtctl.cli.app` registers each with one line."""
