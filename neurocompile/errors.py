"""Errors that reach users: each names the file, the node and the reason.

The CLI turns a :class:`NeuroCompileError` into a one-line message and exit code 2; any other
exception is a bug and is shown with its traceback only under ``--debug``.
"""
from __future__ import annotations


class NeuroCompileError(Exception):
    """A problem with the user's input or request, reported without a traceback.

    ``file`` and ``node`` are optional context; ``str(err)`` joins what is known into one line:
    ``model.nir: node 'fc1': weight has shape (3, 4) but its input has 5 features``.
    """

    def __init__(self, reason: str, *, file: str | None = None, node: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.node = node

    def with_context(self, *, file: str | None = None, node: str | None = None) -> "NeuroCompileError":
        """Fill in file/node where they are not yet known and return self (for re-raising)."""
        if self.file is None and file is not None:
            self.file = str(file)
        if self.node is None and node is not None:
            self.node = node
        return self

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(str(self.file))
        if self.node:
            parts.append(f"node '{self.node}'")
        parts.append(self.reason)
        return ": ".join(parts)


class GraphError(NeuroCompileError):
    """The graph is malformed: unknown op, bad shape, dangling edge, stateless loop."""


class UnsupportedError(NeuroCompileError):
    """The model uses something this frontend or target cannot express faithfully."""


class BackendError(NeuroCompileError):
    """A backend failed to load or cannot run here (missing runtime, no board)."""
