"""The `qtctl` command line: the root app, its shared options and one module per command."""
