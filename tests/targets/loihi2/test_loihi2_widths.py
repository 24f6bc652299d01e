"""The Loihi 2 widths and integer rules of the program layer, against facts
taken from Lava's fixed_pt models (lava-nc 0.10) and small cases derived by
hand -- not against values the code produces.

Lava facts used (``lava/proc/lif/models.py``, ``lava/proc/dense``,
``lava/utils/weightutils.py``): ``decay_shift = 12``, ``decay_unity =
4096``, ``act_shift = vth_shift = 6``, ``max_uv_val = 2**23`` with u wrapped
as ``u - 2*max if u > max``, ``u + 2*max if u <= -max`` and v clipped to
``+-(max - 1)``; du/dv 12 bits, vth 17 bits, bias_mant 13 bits signed,
8-bit weights, weight_exp -8..7, delays <= 63, 24-bit graded messages.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocompile.targets.loihi2 import emulator as loihi
from neurocompile.targets.loihi2 import program as P
from neurocompile.targets.loihi2.program import LoihiConv, LoihiDense, LoihiLIF, LoihiProgram, LoihiSigmaDelta

LOIHI2 = Path(P.__file__).resolve().parent


def test_widths_are_lava_facts():
    assert (LoihiLIF.U_BITS, LoihiLIF.V_BITS) == (24, 24)
    assert LoihiLIF.U_HALF == 8388608 and LoihiLIF.V_MAX == 8388607
    assert (LoihiLIF.DU_BITS, LoihiLIF.DV_BITS, LoihiLIF.DECAY_SHIFT) == (12, 12, 12)
    assert LoihiLIF.DECAY_ONE == 4096
    assert (LoihiLIF.ACT_SHIFT, LoihiLIF.VTH_SHIFT, LoihiLIF.VTH_BITS) == (6, 6, 17)
    assert LoihiLIF.BIAS_MANT_BITS == 13
    assert LoihiDense.WEIGHT_BITS == 8
    assert (LoihiDense.WEIGHT_EXP_MIN, LoihiDense.WEIGHT_EXP_MAX) == (-8, 7)
    assert LoihiDense.MAX_DELAY == 63 and LoihiDense.NUM_MESSAGE_BITS_MAX == 24
    assert LoihiConv.OUT_BITS == 24
    assert LoihiSigmaDelta.STATE_MAX == 8388607 and LoihiSigmaDelta.EXP_MAX == 7
    assert (P.INT32_MIN, P.INT32_MAX) == (-2147483648, 2147483647)


@pytest.mark.parametrize("x, keep, want", [
    (-5000, 4096 - 100, -4877),   # 5000*3996 = 19980000 = 4096*4877 + 3808
    (5000, 4096 - 100, 4877),
    (-1, 4095, 0),                # toward zero, not floor (-1)
    (4095, 1, 0),                 # dv = 4095
    (7, 4095, 6),                 # du = 0 still decays u by 1/4096
    (-8388608, 4096, -8388608),   # dv = 0: no leak
])
def test_decay_rounds_toward_zero(x, keep, want):
    assert int(P.decay(np.array([x], np.int64), keep)[0]) == want


def test_decay_factors_of_du_and_dv():
    lif = LoihiLIF("a", 1, du=0, dv=0, vth=0, bias_mant=np.zeros(1, int))
    assert (lif.keep_u(), lif.keep_v()) == (4095, 4096)   # u by du + 1, v by dv
    lif.du, lif.dv, lif.vth = 4095, 4095, 3
    assert (lif.keep_u(), lif.keep_v(), lif.scaled_vth()) == (0, 1, 192)


def test_u_wraps_one_shot_into_open_closed_24_bit_range():
    d = np.array([2**23, 2**23 + 1, -2**23, -2**23 + 1, 2**23 + 64], np.int64)
    assert P.lif_wrap_u(d).tolist() == [2**23, -2**23 + 1, 2**23, -2**23 + 1, -2**23 + 64]


def test_v_saturates_at_plus_minus_2_23_minus_1():
    assert P.lif_clip_v(np.array([2**23, -2**23, 5], np.int64)).tolist() == [8388607, -8388607, 5]
    lif = LoihiLIF("a", 1, du=4095, dv=0, vth=0, bias_mant=np.zeros(1, int))
    # du = 4095: u = a << 6 = -4096 << 6 = -262144; v = -(2**23 - 10) + u clips
    u, v, s = P.lif_step(lif, np.zeros((1, 1), np.int64), np.full((1, 1), -(2**23 - 10)),
                         np.full((1, 1), -4096), np.zeros((1, 1), np.int64), 0)
    assert (int(u[0, 0]), int(v[0, 0]), bool(s[0, 0])) == (-262144, -8388607, False)


@pytest.mark.parametrize("mode_w, nbits, want", [
    ([3, -3], 8, [2, -4]),      # MIXED drops its lowest bit even at 8 bits (floor)
    ([7, 255], 6, [4, 252]),    # EXCITATORY, 2 bits dropped
    ([-7, -255], 6, [-4, -252]),  # INHIBITORY: magnitudes truncated toward zero
])
def test_weight_truncation_hand_cases(mode_w, nbits, want):
    d = LoihiDense("d", "input", "n", np.array([mode_w]), num_weight_bits=nbits)
    assert d.effective_weights()[0].tolist() == want


def test_conv_output_int32_cast_and_24_bit_wrap():
    acc = np.array([2**23, 2**23 - 1, -2**23 - 1, 3 * 10**9], np.int64)
    # out-of-int32 -> -2**31, and -2**31 wraps to 0 in 24 bits
    assert P.conv_output(acc).tolist() == [-2**23, 2**23 - 1, 2**23 - 1, 0]


def test_delta_update_never_sends_int32_min():
    """Lava's ``np.abs`` on int32 keeps -2**31 negative, so a delta of -2**31 is below any
    threshold: not sent, kept as error and residue."""
    st = {k: np.zeros(2, np.int64) for k in ("act", "residue", "error")}
    out = P.delta_update(st, np.array([-2**31, 5], np.int64), 3, True, 1)
    # 5: |error| = 5 >= 3 -> sent as 5 >> 1 = 2, error reset, residue 0
    assert out.tolist() == [0, 2]
    assert st["error"].tolist() == [-2**31, 0] and st["residue"].tolist() == [-2**31, 0]
    assert st["act"].tolist() == [-2**31, 5]


def _wrap_program():
    """4 input lines -> LIF 'n' through -256 << 7 each: a = -2**17, u = a << 6 = -2**23 wraps to +2**23."""
    w = np.array([[-256] * 4, [1, 1, 1, 1]])   # mixed: 1 -> 0 (lowest bit dropped)
    return LoihiProgram(4, [LoihiLIF("n", 2, du=4095, dv=4095, vth=131071, bias_mant=np.zeros(2, int))],
                        [LoihiDense("d", "input", "n", w, weight_exp=7)])


def test_u_wrap_in_numpy_and_numba_executors():
    x = np.zeros((3, 4), bool)
    x[0] = True
    res = loihi.run(_wrap_program(), x)
    assert res["n"]["u"][:, 0, 0].tolist() == [0, 2**23, 0]
    # v = clip(u) = 2**23 - 1 > vth << 6 = 131071 * 64 = 8388544: spikes, v reset to 0
    assert res["n"]["spikes"][:, 0, 0].tolist() == [0, 1, 0]
    from neurocompile.targets.loihi2 import emulator_fast
    if not emulator_fast.available():
        pytest.skip("numba is not installed")
    fast = emulator_fast.run(_wrap_program(), x)
    for key in ("u", "v", "spikes"):
        assert np.array_equal(fast["n"][key], res["n"][key]), key


def test_executors_restate_no_width_literal():
    for name in ("emulator.py", "emulator_fast.py", "sdn_fixed.py"):
        text = (LOIHI2 / name).read_text()
        for lit in ("16777216", "8388607", "8388608", "2147483648", "4294967295"):
            assert lit not in text, (name, lit)


def test_lava_side_loads_the_program_layer_by_path_only():
    """run_program's loader imports program.py and its sibling modules without any package
    ``__init__`` of neurocompile (what the Lava interpreter relies on)."""
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('rp', {str(LOIHI2 / 'lava' / 'run_program.py')!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "lp = m._load_program_module()\n"
            "assert not [k for k in sys.modules if k.startswith('neurocompile')]\n"
            "print(lp.LoihiLIF.U_HALF, lp.LoihiProgram.load.__name__, lp.sigma_delta_step.__module__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["8388608", "load", "_nc_loihi2.program_neurons"]
