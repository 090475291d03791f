"""`akri validate -f FILE [FILE...]`: check Configuration manifests offline.

The rules are the admission webhook's (`akri.model.validation`). One line per object:
`configuration/<name>: valid` or `configuration/<name>: invalid: <path>: <reason>[; ...]`;
other kinds are reported as skipped. Exit status: 0 all valid, 1 some invalid, 2 a file
could not be read or parsed (reported on stderr with file and line).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from akri.model.constants import API_GROUP, CONFIGURATION_KIND
from akri.model.manifests import Document, ManifestError, expand_lists, read_documents
from akri.model.validation import validate_configuration

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def _is_akri_configuration(obj: dict[str, Any]) -> bool:
    if obj.get("kind") != CONFIGURATION_KIND:
        return False
    api_version = obj.get("apiVersion")
    # A Configuration without apiVersion is most likely ours with a mistake: check it.
    return not isinstance(api_version, str) or api_version.split("/", 1)[0] == API_GROUP


def _label(obj: dict[str, Any], doc: Document) -> str:
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind_text = kind.lower() if isinstance(kind, str) and kind else "object"
    if isinstance(name, str) and name:
        return f"{kind_text}/{name}"
    return f"{kind_text}/<unnamed> ({doc.source}:{doc.line})"


def check_document(doc: Document, out: Any) -> bool:
    """Print one line per object in `doc`; False if any is invalid."""
    ok = True
    for obj in expand_lists(doc.obj):
        if not isinstance(obj, dict):
            out.write(f"{doc.source}:{doc.line}: invalid: not a Kubernetes object (a YAML mapping)\n")
            ok = False
            continue
        label = _label(obj, doc)
        if not _is_akri_configuration(obj):
            out.write(f"{label}: skipped (not an akri.sh Configuration)\n")
            continue
        errors = validate_configuration(obj)
        if errors:
            out.write(f"{label}: invalid: {'; '.join(str(e) for e in errors)}\n")
            ok = False
        else:
            out.write(f"{label}: valid\n")
    return ok


def run(args: argparse.Namespace) -> int:
    status = EXIT_VALID
    for path in args.files:
        try:
            docs = read_documents(path)
        except ManifestError as exc:
            sys.stdout.flush()
            sys.stderr.write(f"akri validate: {exc}\n")
            status = EXIT_UNREADABLE
            continue
        if not docs:
            sys.stderr.write(f"akri validate: {'<stdin>' if path == '-' else path}: no objects\n")
        for doc in docs:
            if not check_document(doc, sys.stdout) and status == EXIT_VALID:
                status = EXIT_INVALID
    return status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check Configuration YAML offline with the admission webhook's rules",
        description="Check Configuration manifests (multi-document YAML or JSON) offline. "
                    "Exit 0: all valid; 1: some invalid; 2: a file could not be read or parsed.",
    )
    p.add_argument("-f", "--filename", dest="files", metavar="FILE", action="extend", nargs="+",
                   required=True, help="manifest file(s); '-' reads standard input")
    p.set_defaults(func=run)
