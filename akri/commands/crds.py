"""`akri crds [--output-dir DIR]`: print (or write) the Configuration and Instance CRDs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from akri.model import crds


def run(args: argparse.Namespace) -> int:
    if args.output_dir is None:
        sys.stdout.write(crds.all_yaml())
        return 0
    out = Path(args.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in crds.crd_files().items():
            (out / name).write_text(text)
    except OSError as exc:
        sys.stderr.write(f"akri crds: cannot write {out}: {exc.strerror or exc}\n")
        return 2
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("crds", help="print the akri.sh/v0 CustomResourceDefinitions (for kubectl apply -f -)")
    p.add_argument("--output-dir", metavar="DIR", default=None,
                   help=f"write {crds.CONFIGURATION_CRD_FILE} and {crds.INSTANCE_CRD_FILE} into DIR instead")
    p.set_defaults(func=run)
