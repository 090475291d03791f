"""A fresh, non-editable install compiles the Cython hot paths and generates the gRPC modules.

The project files (tracked and not ignored, so no generated .c/.so/_pb2 from the working
tree) are copied to a temporary directory and built with ``python -m build``, the way a
release is made: an sdist first, then the wheel *from that sdist*, each in pip's isolated
build environment (build requirements come from pyproject's [build-system], fetched from
the package index). That proves the sdist carries everything the build needs and the
wheel carries the compiled extensions. The wheel is then installed into a new venv
(no system site-packages) whose runtime dependencies are installed while the build runs.

About a minute on 2 cores (the isolated environments install grpcio-tools and Cython, and
three extensions are compiled), so it is marked slow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "uevents" / "libudev-net-lo-change.bin"


@dataclass
class Built:
    sdist: Path
    wheel: Path
    venv: Path
    pyx: list[str]  # stems of akri/_fast/*.pyx in the source
    protos: list[str]  # stems of protos/**/*.proto in the source

    def run(self, *args: str, pure: bool = False) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AKRI_PURE_PYTHON")}
        if pure:
            env["AKRI_PURE_PYTHON"] = "1"
        # cwd outside the repository, so nothing can be imported from the source tree
        done = subprocess.run(list(args), cwd=self.venv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done


def project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()
    return [f for f in listed.split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("build")
    src, dist, venv = tmp / "src", tmp / "dist", tmp / "venv"
    for rel in project_files():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes((ROOT / rel).read_bytes())
    pyx = sorted(p.stem for p in (src / "akri" / "_fast").glob("*.pyx"))
    protos = sorted(p.stem for p in (src / "protos").rglob("*.proto"))
    assert pyx and protos, "nothing to compile in the copied tree"

    build = subprocess.Popen(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(src)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # meanwhile: a clean venv with the runtime dependencies the wheel declares
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        deps = tomllib.loads((src / "pyproject.toml").read_text())["project"]["dependencies"]
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *deps], check=True, timeout=600,
                       capture_output=True)
        log, _ = build.communicate(timeout=900)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
    assert build.returncode == 0, f"python -m build failed:\n{log[-6000:]}"
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, timeout=600,
                   capture_output=True)
    return Built(sdist, wheel, venv, pyx, protos)


def test_sdist_has_sources_to_build_from(built: Built) -> None:
    with tarfile.open(built.sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for stem in built.pyx:
        assert f"akri/_fast/{stem}.pyx" in names
    shipped_protos = {Path(n).stem for n in names if n.startswith("protos/") and n.endswith(".proto")}
    assert shipped_protos == set(built.protos)
    assert "akri/model/k8s_types.json" in names  # the type table k8s_schema reads at run time
    assert not [n for n in names if n.endswith((".c", ".so"))], "generated files shipped in the sdist"


def test_wheel_has_extensions_and_generated_protos_but_no_sources(built: Built) -> None:
    names = zipfile.ZipFile(built.wheel).namelist()
    for stem in built.pyx:
        assert [n for n in names if n.startswith(f"akri/_fast/{stem}.cpython-") and n.endswith(".so")], stem
    for stem in built.protos:
        assert f"akri/_proto/{stem}_pb2.py" in names
        assert f"akri/_proto/{stem}_pb2_grpc.py" in names  # grpcio's: the kubelet double, tests
        assert f"akri/_proto/{stem}_grpc.py" in names  # grpclib's: what akri runs on
    assert "akri/model/k8s_types.json" in names
    assert not [n for n in names if n.endswith((".c", ".pyx", ".pxd"))]
    assert not [n for n in names if n.startswith(("tests/", "bench/", "protos/"))]


def test_installed_akri_reports_compiled(built: Built) -> None:
    info = json.loads(built.run(str(built.venv / "bin" / "akri"), "version", "--json").stdout)
    assert info["compiled"] is True
    assert info["compiledModules"] == {stem: True for stem in built.pyx}


def test_installed_akri_honours_pure_python_switch(built: Built) -> None:
    info = json.loads(built.run(str(built.venv / "bin" / "akri"), "version", "--json", pure=True).stdout)
    assert info["compiled"] is False
    assert not any(info["compiledModules"].values())


def test_installed_extensions_work_from_site_packages(built: Built) -> None:
    probe = (
        "import sys, akri, akri._fast as f\n"
        "from akri._fast import _digest, _uevent\n"
        "from akri._proto import discovery_pb2, discovery_grpc, deviceplugin_pb2, podresources_pb2\n"
        "assert akri.__file__.startswith(sys.prefix), akri.__file__\n"
        "assert _digest.__file__.endswith('.so') and _uevent.__file__.endswith('.so')\n"
        "assert f.digest_hex is _digest.digest_hex and f.parse_uevent is _uevent.parse_uevent\n"
        "print(f.digest_hex('my_shared_device'))\n"
        "print(f.parse_uevent(open(sys.argv[1], 'rb').read())['DEVPATH'])\n"
        "print(discovery_pb2.DESCRIPTOR.package)\n"
    )
    out = built.run(str(built.venv / "bin" / "python"), "-c", probe, str(FIXTURE)).stdout.split()
    assert out == ["4294ea", "/devices/virtual/net/lo", "v0"]


def test_wheel_is_manylinux_compatible(built: Built) -> None:
    # The extensions may link only to libraries every manylinux system has; `auditwheel repair`
    # would then only retag the wheel (a hosted runner does that with cibuildwheel).
    auditwheel = shutil.which("auditwheel")
    if auditwheel is None:
        pytest.skip("auditwheel is not installed (it is in the test extra)")
    out = built.run(auditwheel, "show", str(built.wheel)).stdout
    text = " ".join(out.split())
    assert re.search(r'is consistent with the following platform tag: "manylinux_\d+_\d+_', text), out


def test_installed_wheel_smoke(built: Built) -> None:
    # deploy/ci/wheel_smoke.py is also cibuildwheel's test command: compiled == pure on the
    # vectors, a real gRPC Discover against `akri handler debugEcho`, crds/validate/discover.
    smoke = ROOT / "deploy" / "ci" / "wheel_smoke.py"
    samples = ROOT / "deploy" / "samples"
    done = built.run(str(built.venv / "bin" / "python"), str(smoke), "--samples", str(samples))
    assert "wheel smoke test passed" in done.stdout, done.stdout
