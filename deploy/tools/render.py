#!/usr/bin/env python3
"""Render a kustomization without kustomize: the subset of kustomize that deploy/ uses.

    python deploy/tools/render.py deploy/overlays/k3s > akri.yaml

so the manifests can be rendered and checked where neither `kubectl kustomize` nor `kustomize`
is installed (CI runners, a developer's laptop); tests/test_deploy_render.py checks that the
output equals `kubectl kustomize` wherever kubectl exists.

Supported, with kustomize's semantics and order (patches, then namespace, then labels, then
images, in each kustomization; a Component's resources join its parent's and its transformers
run on everything accumulated so far):
- `resources`: YAML files (several documents each) and directories holding a kustomization;
- `components`: directories holding a `kind: Component` kustomization;
- `namespace`: sets metadata.namespace of namespaced objects;
- `labels`: `pairs` with `includeTemplates` (pod templates of workloads); not `includeSelectors`;
- `images`: `name` -> `newName` / `newTag` / `digest` in containers and initContainers;
- `patches`: inline `patch` or `path`; a YAML list is a JSON patch (RFC 6902: add, remove,
  replace, move, copy, test), a mapping a strategic merge patch; `target` by kind, name
  (a regular expression, as kustomize), namespace, group and version.

Strategic merge knows the list merge keys of the fields deploy/ patches (containers,
initContainers, volumes, env, imagePullSecrets by `name`; volumeMounts by `mountPath`; ports
by `containerPort`); every other list is replaced, as for Kubernetes fields without a patch
strategy. Anything else in a kustomization is an error naming the field, never ignored.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "namespace",
    "labels",
    "images",
    "patches",
}

#: kinds without a namespace (the ones a deployment like ours can contain)
CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "RuntimeClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "CSIDriver",
    "IngressClass",
}
#: workload kind -> path of its pod template
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


class RenderError(ValueError):
    """A kustomization this renderer cannot render; the message names the file and field."""


# --- entry point -------------------------------------------------------------------------------


def render(path: str | Path) -> list[dict[str, Any]]:
    """The objects a kustomization directory renders to (in the order they were accumulated)."""
    return _build(Path(path).resolve(), expect_component=False, into=None)


def to_yaml(objects: Iterable[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)


# --- accumulation ------------------------------------------------------------------------------


def _kustomization_file(directory: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    raise RenderError(f"{directory}: no kustomization.yaml")


def _build(
    directory: Path, *, expect_component: bool, into: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    file = _kustomization_file(directory)
    k = yaml.safe_load(file.read_text()) or {}
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise RenderError(f"{file}: unsupported field(s) {sorted(unknown)}")
    kind = k.get("kind", "Kustomization")
    if expect_component != (kind == "Component"):
        what = "a Component" if expect_component else "a Kustomization"
        raise RenderError(f"{file}: kind {kind!r}, expected {what}")
    objects: list[dict[str, Any]] = [] if into is None else into
    for entry in k.get("resources") or []:
        target = _inside(directory, entry, file, "resources")
        if target.is_dir():
            objects.extend(_build(target, expect_component=False, into=None))
        else:
            objects.extend(_load_documents(target))
    for entry in k.get("components") or []:
        _build(_inside(directory, entry, file, "components"), expect_component=True, into=objects)
    _apply_transformers(k, directory, file, objects)
    return objects


def _inside(directory: Path, entry: str, file: Path, field: str) -> Path:
    if not isinstance(entry, str) or "://" in entry:
        raise RenderError(f"{file}: {field}: only local paths are supported, got {entry!r}")
    if Path(entry).is_absolute():
        raise RenderError(f"{file}: {field}: {entry} is absolute (kustomize accepts relative paths only)")
    target = (directory / entry).resolve()
    if not target.exists():
        raise RenderError(f"{file}: {field}: {entry} does not exist")
    # kustomize's default load restrictor: files must be in or below the kustomization's
    # directory; other directories are fine (they are kustomizations of their own)
    if target.is_file() and directory not in target.parents:
        raise RenderError(f"{file}: {field}: file {entry} is not in or below {directory}")
    return target


def _load_documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise RenderError(f"{path}: document {i} is not a Kubernetes object")
    return docs


# --- transformers ------------------------------------------------------------------------------


def _apply_transformers(
    k: dict[str, Any], directory: Path, file: Path, objects: list[dict[str, Any]]
) -> None:
    for i, patch in enumerate(k.get("patches") or []):
        _apply_patch(patch, directory, f"{file}: patches[{i}]", objects)
    if k.get("namespace"):
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = k["namespace"]
    for i, spec in enumerate(k.get("labels") or []):
        _apply_labels(spec, f"{file}: labels[{i}]", objects)
    for i, spec in enumerate(k.get("images") or []):
        _apply_image(spec, f"{file}: images[{i}]", objects)


def _apply_labels(spec: dict[str, Any], where: str, objects: list[dict[str, Any]]) -> None:
    if spec.get("includeSelectors"):
        raise RenderError(f"{where}: includeSelectors is not supported")
    pairs = spec.get("pairs") or {}
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        template_path = POD_TEMPLATE_PATHS.get(obj["kind"])
        if spec.get("includeTemplates") and template_path:
            template = _walk(obj, template_path, create=True)
            template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj["kind"] == "Pod":
        return [obj.get("spec") or {}]
    path = POD_TEMPLATE_PATHS.get(obj["kind"])
    template = _walk(obj, path, create=False) if path else None
    return [template.get("spec") or {}] if template else []


def _apply_image(spec: dict[str, Any], where: str, objects: list[dict[str, Any]]) -> None:
    name = spec.get("name")
    if not name:
        raise RenderError(f"{where}: name is required")
    for obj in objects:
        for pod in _pod_specs(obj):
            for field in ("initContainers", "containers"):
                for container in pod.get(field) or []:
                    image = container.get("image", "")
                    base = re.split(r"[@]", image, maxsplit=1)[0]
                    # a ':' after the last '/' starts the tag (a registry port comes before it)
                    slash = base.rfind("/")
                    colon = base.rfind(":")
                    if colon > slash:
                        tag: str | None = base[colon + 1 :]
                        base = base[:colon]
                    else:
                        tag = None
                    digest = image.split("@", 1)[1] if "@" in image else None
                    if base != name:
                        continue
                    new = spec.get("newName") or base
                    if spec.get("digest"):
                        container["image"] = f"{new}@{spec['digest']}"
                    elif spec.get("newTag"):
                        container["image"] = f"{new}:{spec['newTag']}"
                    elif digest:
                        container["image"] = f"{new}@{digest}"
                    else:
                        container["image"] = f"{new}:{tag}" if tag else new


def _apply_patch(entry: dict[str, Any], directory: Path, where: str, objects: list[dict[str, Any]]) -> None:
    if "patch" in entry:
        text = entry["patch"]
    elif "path" in entry:
        text = _inside(directory, entry["path"], Path(where.split(":")[0]), "patches.path").read_text()
    else:
        raise RenderError(f"{where}: needs `patch` or `path`")
    body = yaml.safe_load(text)
    target = entry.get("target")
    if isinstance(body, list):
        if not target:
            raise RenderError(f"{where}: a JSON patch needs a target")
        matched = [o for o in objects if _matches(o, target)]
        for obj in matched:
            replacement = json_patch(obj, body, where=where)
            obj.clear()
            obj.update(replacement)
    elif isinstance(body, dict):
        if not target:
            meta = body.get("metadata") or {}
            target = {"kind": body.get("kind"), "name": re.escape(meta.get("name", ""))}
        matched = [o for o in objects if _matches(o, target)]
        for obj in matched:
            merged = strategic_merge(obj, {k: v for k, v in body.items() if k not in ("apiVersion", "kind")})
            obj.clear()
            obj.update(merged)
    else:
        raise RenderError(f"{where}: a patch must be a list (JSON patch) or a mapping (strategic merge)")
    if not matched:
        raise RenderError(f"{where}: the target {target} matches no object")


def _matches(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    meta = obj.get("metadata") or {}
    checks = {
        "kind": obj["kind"],
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "group": group,
        "version": version,
    }
    for field, value in target.items():
        if field not in checks:
            raise RenderError(f"patch target field {field!r} is not supported")
        if value is None:
            continue
        if field == "name":
            if not re.fullmatch(value, checks["name"]):
                return False
        elif checks[field] != value:
            return False
    return True


def _walk(obj: dict[str, Any], path: tuple[str, ...], *, create: bool) -> dict[str, Any] | None:
    node: Any = obj
    for key in path:
        if not isinstance(node, dict):
            return None
        if key not in node:
            if not create:
                return None
            node[key] = {}
        node = node[key]
    return node if isinstance(node, dict) else None


# --- strategic merge: the API double's implementation, errors as RenderError ------------------


def strategic_merge(original: Any, patch: Any) -> Any:
    """Merge `patch` into `original` the way kubectl/kustomize do for built-in types (the API
    double's strategic merge: list merge keys from the types' Go struct tags, $patch directives)."""
    from akri.testing.apiserver.errors import ApiError
    from akri.testing.apiserver.patch import strategic_merge_patch

    try:
        return strategic_merge_patch(original, patch)
    except ApiError as exc:
        raise RenderError(f"strategic merge: {exc.message}") from None


# --- JSON patch (RFC 6902): the API double's implementation, errors as RenderError --------------


def json_patch(document: Any, operations: list[dict[str, Any]], *, where: str = "JSON patch") -> Any:
    """Apply RFC 6902 operations to a copy of `document`; a failed `test` is an error."""
    from akri.testing.apiserver.errors import ApiError
    from akri.testing.apiserver.patch import json_patch as apply

    try:
        return apply(document, operations)
    except ApiError as exc:
        raise RenderError(f"{where}: {exc.message}") from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: render.py KUSTOMIZATION_DIR\n")
        return 2
    try:
        sys.stdout.write(to_yaml(render(args[0])))
    except RenderError as exc:
        sys.stderr.write(f"render.py: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
