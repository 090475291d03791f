"""Reading Kubernetes manifests (multi-document YAML or JSON) the way kubectl does.

Differences from plain `yaml.safe_load_all`, all matching kubectl (sigs.k8s.io/yaml):
unquoted timestamps stay strings; non-string mapping keys become strings; a key repeated
in one mapping is an error. Every document keeps its starting line for messages.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class ManifestError(Exception):
    """A file that cannot be read or parsed; says where."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


class _KubeLoader(yaml.SafeLoader):
    """SafeLoader without the timestamp type, with string keys and no duplicate keys."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = _key_text(key)
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r}", key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping



def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int | float | str):
        return str(key)
    raise yaml.constructor.ConstructorError(None, None,
                                            f"unsupported mapping key of type {type(key).__name__}")


@dataclass(frozen=True)
class Document:
    source: str
    index: int  # 1-based position in the file
    line: int  # 1-based line where the document starts
    obj: Any


def load_documents(text: str, source: str = "<string>") -> list[Document]:
    """Parse every document of a YAML (or JSON) text; empty documents are left out."""
    loader = _KubeLoader(text)
    docs: list[Document] = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            index += 1
            if node is None:
                continue
            try:
                obj = loader.construct_document(node)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # explicit tags with bad values (`!!int abc`, `!!bool maybe`) fail in PyYAML's constructors
                raise ManifestError(source, f"YAML error: cannot construct a value: {exc}",
                                    node.start_mark.line + 1) from None
            if obj is not None:
                docs.append(Document(source, index, node.start_mark.line + 1, obj))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ManifestError(source, f"YAML syntax error: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise ManifestError(source, f"YAML error: {exc}") from None
    except RecursionError:
        raise ManifestError(source, "YAML nests too deeply") from None
    finally:
        loader.dispose()
    return docs


def read_documents(path: str) -> list[Document]:
    """Read a manifest file (`-` = standard input); ManifestError if unreadable or not YAML."""
    if path == "-":
        source = "<stdin>"
        try:
            data = sys.stdin.buffer.read()
        except OSError as exc:
            raise ManifestError(source, f"cannot read: {exc.strerror or exc}") from None
    else:
        source = path
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ManifestError(source, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(source, f"not UTF-8 text (byte {exc.start})") from None
    return load_documents(text, source)


def expand_lists(obj: Any) -> list[Any]:
    """A `kind: List` (or `<Kind>List`, as `kubectl get -o yaml` prints) becomes its items."""
    if isinstance(obj, dict) and isinstance(obj.get("kind"), str) and obj["kind"].endswith("List") \
            and isinstance(obj.get("items"), list):
        return list(obj["items"])
    return [obj]
