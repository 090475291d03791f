"""Pure-Python twins of the compiled hot paths in `akri._fast`.

Every function here has the same name, signature and behaviour as its compiled
counterpart; tests run both and compare. Import this module directly to bypass the
compiled extensions, or set AKRI_PURE_PYTHON=1 to make `akri._fast` use it.
"""

from akri._fast.pure.digest import digest_hex, digest_hex_batch
from akri._fast.pure.slots import SlotTable as SlotTable  # class: re-exported, not in __all__
from akri._fast.pure.uevent import parse_uevent

__all__ = ["digest_hex", "digest_hex_batch", "parse_uevent"]
