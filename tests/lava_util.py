"""Finding Lava for tests: skip when absent, unless CI demands it (NEUROCOMPILE_REQUIRE_LAVA)."""
import os

import pytest

from neurocompile.targets.loihi2.lava.host import find_lava_python


def require_lava() -> str:
    py = find_lava_python()
    if py is None:
        if os.environ.get("NEUROCOMPILE_REQUIRE_LAVA"):
            pytest.fail("NEUROCOMPILE_REQUIRE_LAVA is set but no Lava interpreter was found "
                        "(run `neurocompile setup loihi` or set NEUROCOMPILE_LAVA_PYTHON)")
        pytest.skip("no Lava environment (neurocompile setup loihi)")
    return py
