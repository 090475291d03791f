"""Without the `akri[opcua]` extra: a clear error with the install command where discovery would
run, while checking OPC UA discovery details keeps working. asyncua is made unimportable in a
fresh process (`sys.modules['asyncua'] = None`), exactly what a missing package looks like."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

INSTALL = "pip install 'akri[opcua]'"
WITHOUT_ASYNCUA = (
    "import sys\n"
    "sys.modules['asyncua'] = None\n"
    "from akri.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "assert 'asyncua' not in sys.modules or sys.modules['asyncua'] is None\n"
    "sys.exit(code)\n"
)
CONFIG = """\
apiVersion: akri.sh/v0
kind: Configuration
metadata:
  name: opcua-monitoring
spec:
  discoveryHandler:
    name: opcua
    discoveryDetails: |
      opcuaDiscoveryMethod:
        standard:
          discoveryUrls: [{url}]
  capacity: 1
"""


def akri_without_asyncua(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT_ASYNCUA, *args], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


def test_discover_says_how_to_install_the_extra(tmp_path: Path):
    config = tmp_path / "opcua.yaml"
    config.write_text(CONFIG.format(url="opc.tcp://127.0.0.1:4840/"))
    result = akri_without_asyncua("discover", "-f", str(config), tmp_path=tmp_path)
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "configuration/opcua-monitoring" in result.stderr
    assert INSTALL in result.stderr
    assert "Traceback" not in result.stderr


def test_standalone_handler_says_how_to_install_the_extra(tmp_path: Path):
    result = akri_without_asyncua("handler", "opcua", "--directory", str(tmp_path), tmp_path=tmp_path)
    assert result.returncode == 2, result
    assert INSTALL in result.stderr
    assert list(tmp_path.iterdir()) == []  # no socket was made


def test_details_are_still_checked_without_asyncua(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text(CONFIG.format(url="opc.tcp://127.0.0.1:4840/"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.format(url="opc.tcp://127.0.0.1/"))
    result = akri_without_asyncua("validate", "-f", str(good), "-f", str(bad), tmp_path=tmp_path)
    assert result.returncode == 1, result
    lines = result.stdout.splitlines()
    assert lines[0] == "configuration/opcua-monitoring: valid"
    assert lines[1].startswith(
        "configuration/opcua-monitoring: invalid: "
        "spec.discoveryHandler.discoveryDetails.opcuaDiscoveryMethod.standard.discoveryUrls[0]: "
        "must give the port")


def test_checking_details_does_not_import_asyncua():
    """The webhook and `akri validate` check OPC UA details without loading asyncua (48 MB)."""
    script = (
        "import sys\n"
        "from akri.model.validation import handler_validator\n"
        "handler_validator('opcua')('opcuaDiscoveryMethod: {standard: {}}')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'asyncua'))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"
