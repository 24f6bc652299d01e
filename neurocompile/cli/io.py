"""Reading users' arrays safely (no pickles) and writing results atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.utils.atomic import write_npz
from neurocompile.utils.outputs import FILE_KINDS, NPZ_MARKER, claim_output


def load_array(path: str) -> np.ndarray:
    """A .npy file, or a .npz file with one array (or an array named 'x')."""
    p = Path(path)
    if not p.is_file():
        raise NeuroCompileError("no such file", file=path)
    try:
        data = np.load(p, allow_pickle=False)
    except ValueError as err:
        raise NeuroCompileError(f"cannot read the array (pickled or corrupt): {err}", file=path) from None
    except Exception as err:  # noqa: BLE001 - numpy raises many kinds for a corrupt file
        raise NeuroCompileError(f"not a .npy/.npz array file: {err}", file=path) from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            keys = data.files
            if "x" in keys:
                return data["x"]
            if len(keys) != 1:
                raise NeuroCompileError(f"the npz holds {keys}: name the input array 'x'", file=path)
            return data[keys[0]]
    return data


def save_result(path: str, result, artifact, *, force: bool = False, inputs=()) -> None:
    """Write ``run``'s outputs and probes to an .npz (marked as ours, so a rerun may replace it)."""
    claim_output(path, "outputs", force=force, inputs=inputs)
    arrays = {NPZ_MARKER: np.array(FILE_KINDS["outputs"])}
    for name, arr in result.outputs.items():
        arrays[f"out:{name}"] = arr
    if len(result.outputs) == 1:
        arrays["output"] = next(iter(result.outputs.values()))
    for name, arr in result.probes.items():
        arrays[f"probe:{name}"] = arr
    write_npz(path, arrays)
