"""The `dirsync` commands, one module per area; each lists its click commands in
`COMMANDS`, and `cli.main.COMMAND_MODULES` names the modules."""
