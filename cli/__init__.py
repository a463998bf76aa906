"""The `dirsync` command line: parses, calls `service`, renders (DESIGN §1)."""
