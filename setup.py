"""Build hooks: compile the Cython hot paths and generate the gRPC modules from protos/.

Both happen at build time so that the wheel carries compiled extensions and generated
`*_pb2.py` files matching the pinned grpcio-tools, and the repository carries neither.
Two kinds of service stubs are generated: grpclib's `*_grpc.py` (what akri runs on) and
grpcio's `*_pb2_grpc.py` (the kubelet double and the tests, an independent implementation).
"""

from __future__ import annotations

import glob
import os
import shlex
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "protos"


def generate_protos(out_dir: Path) -> None:
    """Run protoc (from grpcio-tools) on every .proto under protos/ into out_dir."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for sub in {str(Path(p).parent) for p in protos}:
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
        init = out_dir / sub / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated gRPC/protobuf modules (built from protos/)."""\n')
    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            f"--plugin=protoc-gen-grpclib_python={grpclib_plugin(Path(tmp))}",
            f"--grpclib_python_out={out_dir}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed for {protos}")


def grpclib_plugin(directory: Path) -> Path:
    """An executable running grpclib's protoc plugin with this interpreter.

    protoc wants an executable file; grpclib installs one (protoc-gen-grpclib_python), but not
    necessarily on PATH in an isolated build. `python -m grpclib.plugin.main` does nothing
    (the module has no __main__ guard), so the script calls main() itself.
    """
    script = directory / "protoc-gen-grpclib_python"
    code = "from grpclib.plugin.main import main; main()"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(code)}\n")
    script.chmod(0o755)
    return script


class BuildPyWithProtos(build_py):
    def run(self) -> None:
        super().run()
        # Editable installs import from the source tree, so generate there (git-ignored).
        target = ROOT if getattr(self, "editable_mode", False) else Path(self.build_lib)
        generate_protos(target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return super().get_outputs(include_bytecode)


def extensions() -> list[Extension]:
    if os.environ.get("AKRI_NO_EXTENSIONS"):
        return []
    from Cython.Build import cythonize

    mods = [
        Extension(
            "akri._fast." + Path(pyx).stem,
            [pyx],
            extra_compile_args=["-O2"],
        )
        for pyx in sorted(glob.glob("akri/_fast/*.pyx"))
    ]
    return cythonize(mods, language_level=3, compiler_directives={"boundscheck": False, "wraparound": False})


setup(ext_modules=extensions(), cmdclass={"build_py": BuildPyWithProtos})
