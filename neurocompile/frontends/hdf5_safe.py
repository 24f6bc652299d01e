"""A safe first look at an HDF5 file (NIR and lava-dl netx files are HDF5).

:func:`check_hdf5` walks every object before anything reads data and refuses what could read
outside the file or exhaust memory. Shared by :mod:`.nir` and :mod:`.netx`.
"""
from __future__ import annotations

import os

from neurocompile.errors import NeuroCompileError
from neurocompile.utils.budget import check_alloc

MAX_DEPTH = 64
MAX_OBJECTS = 1_000_000


def check_hdf5(fh, file: str, kind: str = "NIR") -> None:
    """Walk an HDF5 file (open binary file object) before anything reads its data.

    Refused, each naming the object: external links (another file), datasets with external raw
    storage (``dset.external``, e.g. bytes of ``/etc/passwd``) or virtual datasets (data mapped
    from other files), user-defined links, dangling soft links, nesting deeper than
    :data:`MAX_DEPTH` (link cycles); datasets whose declared size exceeds what the file can hold
    (unfiltered storage) or the memory budget (:mod:`neurocompile.utils.budget`).
    """
    import h5py


    size = os.fstat(fh.fileno()).st_size
    fh.seek(0)
    try:
        f = h5py.File(fh, "r")
    except Exception as err:  # noqa: BLE001 - h5py raises OSError and others for non-HDF5 data
        msg = " ".join(str(err).split())[:200]
        raise NeuroCompileError(f"cannot read {kind} (corrupt or not HDF5/{kind}): {msg}", file=file) from None
    total = [0, 0]  # bytes declared, objects seen
    seen_groups: set = set()

    def walk(group, where: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise NeuroCompileError(f"HDF5 group '{where}' is nested deeper than {MAX_DEPTH} levels "
                                    f"(a link cycle?)", file=file)
        for name in group.keys():
            total[1] += 1
            if total[1] > MAX_OBJECTS:
                raise NeuroCompileError(f"the HDF5 file holds more than {MAX_OBJECTS} objects", file=file)
            obj_path = f"{where.rstrip('/')}/{name}"
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise NeuroCompileError(f"HDF5 object '{obj_path}' is an external link to "
                                        f"{link.filename}:{link.path} (refused: only data inside the file "
                                        f"is read)", file=file)
            if not isinstance(link, (h5py.HardLink, h5py.SoftLink)):
                raise NeuroCompileError(f"HDF5 object '{obj_path}' is a {type(link).__name__} (refused)",
                                        file=file)
            try:
                obj = group.get(name)
            except Exception as err:  # noqa: BLE001
                raise NeuroCompileError(f"HDF5 object '{obj_path}' cannot be opened: {err}", file=file) from None
            if obj is None:
                raise NeuroCompileError(f"HDF5 object '{obj_path}' is a dangling link", file=file)
            if isinstance(obj, h5py.Group):
                key = hash(obj.id)
                if key in seen_groups:
                    raise NeuroCompileError(f"HDF5 group '{obj_path}' is reached twice (a shared group or a "
                                            f"link cycle; refused)", file=file)
                seen_groups.add(key)
                walk(obj, obj_path, depth + 1)
            elif isinstance(obj, h5py.Dataset):
                check_dataset(obj, obj_path)

    def check_dataset(d, obj_path: str) -> None:
        if d.external:
            raise NeuroCompileError(f"HDF5 dataset '{obj_path}' keeps its data in external file(s) "
                                    f"{[e[0] for e in d.external]} (refused: only data inside the file "
                                    f"is read)", file=file)
        if d.is_virtual:
            raise NeuroCompileError(f"HDF5 dataset '{obj_path}' is a virtual dataset mapping other files "
                                    f"(refused: only data inside the file is read)", file=file)
        shape = d.shape or ()
        n = 1
        for s in shape:
            n *= int(s)
        nbytes = n * int(d.dtype.itemsize)
        filtered = d.id.get_create_plist().get_nfilters() > 0
        if not filtered and nbytes > size:
            raise NeuroCompileError(f"HDF5 dataset '{obj_path}' declares {nbytes} bytes {shape} but the file "
                                    f"holds {size}", file=file)
        total[0] += nbytes
        check_alloc(total[0], f"the HDF5 datasets (up to '{obj_path}' {shape} {d.dtype})", file=file)

    try:
        with f:
            seen_groups.add(hash(f["/"].id))
            walk(f, "/", 0)
    except NeuroCompileError:
        raise
    except RecursionError:
        raise NeuroCompileError("HDF5 groups are nested too deeply", file=file) from None
    except Exception as err:  # noqa: BLE001 - a corrupt file fails inside h5py in many ways
        msg = " ".join(str(err).split())[:200]
        raise NeuroCompileError(f"cannot read {kind} (corrupt HDF5): {msg}", file=file) from None
