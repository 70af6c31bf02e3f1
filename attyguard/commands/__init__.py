"""The non-shell subcommands: check, trust, rules."""
