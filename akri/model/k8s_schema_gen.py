"""Generate akri/model/k8s_types.json, the Kubernetes type table akri.model.k8s_schema reads.

    python -m akri.model.k8s_schema_gen            # rewrite the committed table
    python -m akri.model.k8s_schema_gen --check    # exit 1 if it is out of date

The table is read from lightkube-models (generated from the Kubernetes OpenAPI document)
through `msgspec.inspect`, for the root kinds below and every struct they reach. Both are
test dependencies only: they are imported when this runs, never by the validator. After
upgrading lightkube-models, run this once and commit the file (tests/test_model_k8s_types.py
fails while the committed table differs from what the installed version gives).

Table format (JSON):
  "source":  the lightkube-models version it came from (informational)
  "roots":   kind -> struct name
  "structs": struct name (the model's class name) -> {"fields": {JSON key: type},
             "required": [JSON keys]} (fields in the model's order; "required" only if any)
  a type is a primitive name ("str", "int", "float", "bool", "datetime", "null", "any",
  "map": a JSON object of untyped values), a struct name, ["list", item type] or
  ["union", type, ...]. A field's own type has no "null" option: a null member is handled
  before its type is looked at (absent/null = not given), so it would change nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("k8s_types.json")
PRIMITIVES = frozenset({"str", "int", "float", "bool", "datetime", "null", "any", "map"})
# kind -> (lightkube.models module, class name)
ROOTS = {
    "PodSpec": ("core_v1", "PodSpec"),
    "JobSpec": ("batch_v1", "JobSpec"),
    "ServiceSpec": ("core_v1", "ServiceSpec"),
    "ObjectMeta": ("meta_v1", "ObjectMeta"),
}


def build() -> dict[str, Any]:
    """The table from the installed lightkube-models."""
    import importlib
    import importlib.metadata

    from msgspec import inspect as mi

    classes = [getattr(importlib.import_module(f"lightkube.models.{module}"), name)
               for module, name in ROOTS.values()]
    structs: dict[str, Any] = {}
    owners: dict[str, type] = {}

    def struct(t: mi.StructType) -> str:
        name = t.cls.__name__
        if name in PRIMITIVES:
            raise ValueError(f"struct {t.cls} is named like a primitive type")
        if name in owners:
            if owners[name] is not t.cls:
                raise ValueError(f"two structs named {name}: {owners[name]} and {t.cls}")
            return name
        owners[name] = t.cls
        structs[name] = entry = {}  # reserved before the fields: structs may refer to themselves
        fields = {f.encode_name: describe(field_type(f.type)) for f in t.fields}
        entry["fields"] = fields
        required = [f.encode_name for f in t.fields if f.required]
        if required:
            entry["required"] = required
        return name

    def field_type(t: mi.Type) -> mi.Type:
        if isinstance(t, mi.UnionType):
            options = [x for x in t.types if not isinstance(x, mi.NoneType)]
            if len(options) == 1:
                return options[0]
            if len(options) < len(t.types):
                return mi.UnionType(tuple(options))
        return t

    def describe(t: mi.Type) -> Any:
        if isinstance(t, mi.StructType):
            return struct(t)
        if isinstance(t, mi.UnionType):
            return ["union", *(describe(x) for x in t.types)]
        if isinstance(t, mi.ListType):
            return ["list", describe(t.item_type)]
        # Map keys and values are untyped in lightkube-models; k8s_schema decides by field name.
        if isinstance(t, mi.DictType):
            return "map"
        for kind, name in ((mi.StrType, "str"), (mi.IntType, "int"), (mi.FloatType, "float"),
                           (mi.BoolType, "bool"), (mi.DateTimeType, "datetime"),
                           (mi.NoneType, "null"), (mi.AnyType, "any")):
            if isinstance(t, kind):
                return name
        # A new kind of type deserves a decision in k8s_schema, not a silent guess.
        raise ValueError(f"no table form for {t!r}")

    roots = {kind: struct(t) for kind, t in zip(ROOTS, mi.multi_type_info(classes), strict=True)}
    return {
        "source": f"lightkube-models {importlib.metadata.version('lightkube-models')}",
        "roots": roots,
        "structs": dict(sorted(structs.items())),
    }


def render(table: dict[str, Any]) -> str:
    """The file text: compact JSON, one struct per line so upgrades give readable diffs."""
    def dump(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    lines = [f"{dump(name)}:{dump(entry)}" for name, entry in table["structs"].items()]
    return (f'{{"source":{dump(table["source"])},\n"roots":{dump(table["roots"])},\n'
            f'"structs":{{\n' + ",\n".join(lines) + "\n}}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether the table is current")
    parser.add_argument("--output", type=Path, default=TABLE, help=f"default: {TABLE}")
    args = parser.parse_args(argv)
    table = build()
    text = render(table)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m akri.model.k8s_schema_gen", file=sys.stderr)
            return 1
        print(f"{args.output} is current")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text.encode())} bytes, {len(table['structs'])} structs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
