"""Turn exceptions into one-line messages and exit codes (2: bad input or not enough memory; 1: internal
error)."""
from __future__ import annotations

import sys
import traceback

import click

from neurocompile.errors import NeuroCompileError
from neurocompile.utils.budget import fmt_bytes, memory_budget
from neurocompile.utils.extras import missing_extra

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with control characters escaped (a newline in a node or file name, a multi-line
    library message), so the message stays on one line and cannot forge further lines."""
    return "".join(_ESCAPES.get(c, f"\\x{ord(c):02x}") if (ord(c) < 32 or 127 <= ord(c) < 160) and c != " "
                   else c for c in text)


def report_and_exit(err: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(type(err), err, err.__traceback__)
    if isinstance(err, ModuleNotFoundError):
        err = missing_extra(err) or err
    if isinstance(err, NeuroCompileError):
        click.echo(f"error: {one_line(str(err))}", err=True)
        sys.exit(2)
    if isinstance(err, MemoryError):  # an allocation the budget checks did not foresee: say so, with the figures
        budget, source = memory_budget()
        click.echo(f"error: out of memory: {one_line(str(err)) or 'an allocation failed'} (memory budget "
                   f"{fmt_bytes(budget)}, {source}; a smaller batch or fewer steps need less)", err=True)
        sys.exit(2)
    click.echo(f"internal error: {type(err).__name__}: {one_line(str(err))} (run with --debug for the traceback)",
               err=True)
    sys.exit(1)
