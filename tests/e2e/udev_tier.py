"""The udev tier's fixtures (tests/udev/conftest.py, written for the udev handler's tests), for
end-to-end tests outside that directory:

    from e2e.udev_tier import udevd, veth  # noqa: F401

`udevd`: a systemd-udevd child process (module scope); `veth`: veth pairs named akt<random>,
always deleted. Both skip unless root.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "udev" / "conftest.py"
_spec = importlib.util.spec_from_file_location("akri_e2e_udev_tier", _PATH)
assert _spec is not None and _spec.loader is not None
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

udevd = _module.udevd
veth = _module.veth
VethFactory = _module.VethFactory
Udevd = _module.Udevd
need_root = _module.need_root

__all__ = ["Udevd", "VethFactory", "need_root", "udevd", "veth"]
