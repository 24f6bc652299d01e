"""Issue 16, property-based: random mutations of a real artifact and a real .nir file, random
npy headers for ``run --input``. Whatever the bytes, the CLI ends with exit 0 or 2, never a
traceback, an internal error or a hang (each call runs under a time limit, see fuzzutil)."""
from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzzutil import LIF_NIR, assert_clean, invoke
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    a = tmp_path_factory.mktemp("art") / "lif"
    r = invoke("compile", LIF_NIR, "-o", a)   # the default target: emulator (loihi2 payload)
    assert r.exit_code == 0, r.output
    files = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    return a, files


@st.composite
def mutations(draw, size: int):
    """A list of edits of a file of ``size`` bytes: flip, overwrite, insert, delete, truncate."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(0, size - 1)))
        if kind == "flip":
            edits.append((kind, pos, draw(st.integers(0, 7))))
        elif kind == "set":
            edits.append((kind, pos, draw(st.binary(min_size=1, max_size=8))))
        elif kind == "insert":
            edits.append((kind, pos, draw(st.binary(min_size=1, max_size=16))))
        elif kind == "delete":
            edits.append((kind, pos, draw(st.integers(1, 64))))
        else:
            edits.append((kind, pos, None))
    return edits


def apply(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for kind, pos, arg in edits:
        pos = min(pos, max(0, len(b) - 1))
        if kind == "flip" and b:
            b[pos] ^= 1 << arg
        elif kind == "set":
            b[pos:pos + len(arg)] = arg
        elif kind == "insert":
            b[pos:pos] = arg
        elif kind == "delete":
            del b[pos:pos + arg]
        elif kind == "truncate":
            del b[pos:]
    return bytes(b)


@settings(SETTINGS, max_examples=70)
@given(data=st.data())
def test_mutated_artifact(artifact, data):
    src, files = artifact
    member = data.draw(st.sampled_from(files), label="file")
    edits = data.draw(mutations((src / member).stat().st_size), label="edits")
    with tempfile.TemporaryDirectory() as tmp:
        a = Path(tmp) / "lif"
        shutil.copytree(src, a)
        (a / member).write_bytes(apply((src / member).read_bytes(), edits))
        x = Path(tmp) / "x.npy"
        np.save(x, np.ones((3, 1, 1)))
        r = invoke("run", a, "--input", x)
        assert_clean(r)
        if r.exit_code == 2:
            assert str(a) in r.output


@settings(SETTINGS, max_examples=60)
@given(edits=mutations(LIF_NIR.stat().st_size))
def test_mutated_nir(edits):
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "m.nir"
        p.write_bytes(apply(LIF_NIR.read_bytes(), edits))
        r = invoke("inspect", p)
        assert_clean(r)
        if r.exit_code == 2:
            assert str(p) in r.output and len(r.output.strip().splitlines()) == 1


DTYPES = ["<f8", "<f4", "<f2", "|b1", "<i8", "<u2", "|i1", ">f8", "<c16", "<U3", "|S2", "|V4", "<M8[s]",
          "|O", "[('a', '<f8')]", "<f16"]


@st.composite
def npy_files(draw) -> bytes:
    """A random npy: header with any dtype / shape / order (sometimes absurd), then some data."""
    descr = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.one_of(st.integers(0, 4), st.integers(0, 1 << 40)), max_size=4)))
    fortran = draw(st.booleans())
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0)]))
    header = "{'descr': %s, 'fortran_order': %s, 'shape': %r, }" % (
        descr if descr.startswith("[") else repr(descr), fortran, shape)
    if draw(st.booleans()):
        header = draw(st.sampled_from([header[:-3], header.replace("shape", "shap"), header + "x",
                                       "{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 2), }"]))
    magic = b"\x93NUMPY" + bytes(version)
    body = header.encode("utf-8")
    pad = 64 - (len(magic) + (2 if version == (1, 0) else 4) + len(body) + 1) % 64
    body += b" " * pad + b"\n"
    length = len(body).to_bytes(2 if version == (1, 0) else 4, "little")
    payload = draw(st.binary(max_size=256))
    if draw(st.booleans()):
        payload = np.ones(draw(st.integers(1, 24)), dtype="<f8").tobytes()
    return magic + length + body + payload


@settings(SETTINGS, max_examples=60)
@given(raw=npy_files(), as_npz=st.booleans())
def test_random_npy_input(artifact, raw, as_npz):
    a, _ = artifact
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / ("x.npz" if as_npz else "x.npy")
        if as_npz:
            import zipfile

            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
                z.writestr("x.npy", raw)
            p.write_bytes(buf.getvalue())
        else:
            p.write_bytes(raw)
        r = invoke("run", a, "--input", p)
        assert_clean(r)
        if r.exit_code == 2:
            errors = [line for line in r.output.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and (str(p) in errors[0] or "input" in errors[0]), r.output
