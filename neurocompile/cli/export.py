"""``neurocompile export``: write a compiled artifact in another tool's format (netx)."""
from __future__ import annotations

import click

EPILOG_EXPORT = """\b
Examples:
  neurocompile compile net.net -t loihi2 -o build/net
  neurocompile export build/net --format netx -o build/net.net   # lava-dl netx.hdf5.Network loads it
"""


@click.command(epilog=EPILOG_EXPORT)
@click.argument("artifact", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["netx"]), default="netx", show_default=True, help=(
    "netx: lava-dl's HDF5 network file (CUBA dense/conv chains or SDNN networks of a Loihi 2 artifact)."
))
@click.option("--output", "-o", required=True, type=click.Path(), help=(
    "File to write (absent, or an earlier export of ours)."))
def export(artifact, fmt, output):
    """Write a compiled Loihi 2 ARTIFACT as a lava-dl netx .net file with the same integers."""
    from neurocompile.errors import NeuroCompileError
    from neurocompile.targets.artifact import load_artifact
    from neurocompile.targets.loihi2.netx_export import describe, write_netx
    from neurocompile.targets.loihi2.program import LoihiProgram
    from neurocompile.utils.outputs import claim_output

    claim_output(output, fmt, inputs=(artifact,))
    art = load_artifact(artifact)
    program = art.payload.get("program") if isinstance(art.payload, dict) else None
    if not isinstance(program, LoihiProgram):
        raise NeuroCompileError(f"an artifact for target '{art.target}' has no Loihi 2 program to export "
                                "(compile with -t loihi2)", file=str(artifact))
    write_netx(program, output, source=str(artifact), io=art.payload.get("io"))
    click.echo(f"wrote {output} (netx: {describe(program)})")
