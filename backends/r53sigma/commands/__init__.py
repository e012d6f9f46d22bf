"""Sub-commands of the `r53sigma` CLI: each module defines `register(subparsers)`.

`register` adds its parser and sets `func(args) -> int` (the exit status) as its default.
"""
