"""Turn exceptions into one-line messages and exit codes (2: bad input; 1: internal error)."""
from __future__ import annotations

import sys
import traceback

import click

from neurocompile.errors import NeuroCompileError


def report_and_exit(err: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(type(err), err, err.__traceback__)
    if isinstance(err, NeuroCompileError):
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    click.echo(f"internal error: {type(err).__name__}: {err} (run with --debug for the traceback)", err=True)
    sys.exit(1)
