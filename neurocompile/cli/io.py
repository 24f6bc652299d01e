"""Reading users' arrays safely (no pickles) and writing results atomically."""
from __future__ import annotations

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.utils.atomic import write_npz
from neurocompile.utils.files import open_regular
from neurocompile.utils.npfiles import load_npy, load_npz, npz_keys
from neurocompile.utils.outputs import FILE_KINDS, NPZ_MARKER, claim_output


def load_array(path: str, what: str = "input", min_ndim: int = 2) -> np.ndarray:
    """A .npy file, or a .npz file with one array (or an array named 'x').

    Refused with a one-line error naming the file: FIFOs, devices, directories; pickles and
    string/structured dtypes (only bool, integer and float arrays); fewer than ``min_ndim`` axes;
    an empty axis (zero time steps or zero batch); NaN or infinity; a header declaring more data
    than the file holds or than the memory budget allows (checked before allocating).
    """
    with open_regular(path, f"{what} file") as fh:
        magic = fh.read(6)
    if magic.startswith(b"PK"):
        keys = npz_keys(path)
        if "x" in keys:
            key = "x"
        elif len(keys) == 1:
            key = keys[0]
        else:
            raise NeuroCompileError(f"the npz holds {keys}: name the input array 'x'", file=path)
        data = load_npz(path, keys=[key])[key]
    elif magic == b"\x93NUMPY":
        data = load_npy(path, f"{what} file")
    else:
        raise NeuroCompileError("not a .npy/.npz array file", file=path)
    return check_array(data, path, what, min_ndim)


def check_array(data: np.ndarray, path: str, what: str = "input", min_ndim: int = 2) -> np.ndarray:
    if data.dtype.kind not in "biuf":
        raise NeuroCompileError(f"the {what} array has dtype {data.dtype}: expected bool, integer or float",
                                file=path)
    if data.ndim < min_ndim:
        want = "(T, batch, *shape) or (T, *shape)" if min_ndim >= 2 else f"at least {min_ndim} axis"
        raise NeuroCompileError(f"the {what} array has shape {data.shape}: expected {want}", file=path)
    if data.size == 0:
        axis = next(i for i, s in enumerate(data.shape) if s == 0)
        label = {0: "time steps" if min_ndim >= 2 else "entries", 1: "batch entries"}.get(axis, f"size on axis {axis}")
        raise NeuroCompileError(f"the {what} array has shape {data.shape}: zero {label}", file=path)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        bad = "NaN" if np.isnan(data).any() else "infinity"
        raise NeuroCompileError(f"the {what} array holds {bad} (at index "
                                f"{tuple(int(i) for i in np.argwhere(~np.isfinite(data))[0])})", file=path)
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
