"""The Dockerfile, checked without a container engine (none exists on these machines).

What can be checked statically is checked: two stages, the build stage copies exactly what
`python -m build` needs (the same files tests/test_build_wheel.py builds the wheel from, minus
tests, benchmarks and manifests), .dockerignore lets those in and keeps generated files out,
and the runtime stage runs `akri` as a non-root user by default.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def glob_regex(pattern: str) -> str:
    """Go's filepath.Match syntax plus `**` (any number of directories), as Docker uses."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def ignored(path: str) -> bool:
    """Docker's .dockerignore rules: last matching pattern wins, `!` re-includes, a pattern that
    matches a directory covers everything below it, `**` spans directories."""
    verdict = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        regex = glob_regex(pattern)
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(re.fullmatch(regex, p) for p in prefixes):
            verdict = not negate
    return verdict


def test_two_stages_build_then_runtime() -> None:
    build, runtime = stages()
    assert build[0][1].startswith("python:") and build[0][1].endswith("AS build")
    assert runtime[0][1].startswith("python:")
    assert ("COPY", "--from=build /opt/akri /opt/akri") in runtime
    assert not [i for i in runtime if i[0] == "COPY" and "--from" not in i[1]], "sources in the runtime image"


def test_build_stage_copies_what_the_wheel_build_needs() -> None:
    (build, _) = stages()
    copied = {src for ins, args in build if ins == "COPY" for src in args.split()[:-1]}
    copied = {c.rstrip("/") for c in copied}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", "setup.py", "MANIFEST.in", pyproject["project"]["readme"], "protos", "akri"}
    assert copied == needed
    for path in needed:
        assert (ROOT / path).exists()
        assert not ignored(path), f".dockerignore excludes {path}"
    for proto in (ROOT / "protos").rglob("*.proto"):
        assert not ignored(str(proto.relative_to(ROOT)))
    for pyx in (ROOT / "akri" / "_fast").glob("*.pyx"):
        assert not ignored(str(pyx.relative_to(ROOT)))


def test_generated_and_unrelated_files_stay_out_of_the_context() -> None:
    for path in ("akri/_proto/discovery_pb2.py", "akri/_fast/_digest.c", "akri/_fast/_digest.cpython-311.so",
                 "akri/__pycache__/cli.cpython-311.pyc", "tests/test_crds.py", ".git/HEAD", "build/lib/x.py",
                 ".venv/bin/python", "deploy/base/agent.yaml"):
        assert ignored(path), path


def test_the_build_refuses_a_wheel_without_extensions_and_the_image_runs_akri_unprivileged() -> None:
    (build, runtime) = stages()
    assert any("'compiled'] is True" in args for ins, args in build if ins == "RUN")
    users = [args for ins, args in runtime if ins == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("ENTRYPOINT", '["akri"]') in runtime


def test_build_command_in_the_header_covers_the_three_platforms() -> None:
    assert "--platform linux/amd64,linux/arm64,linux/arm/v7" in DOCKERFILE
