"""Commands added to `dirsync` by the worker: each module lists its click commands in
`COMMANDS`, which `worker.cli` registers."""
