#!/usr/bin/env python3
"""Kubernetes RBAC evaluation over rendered manifests: what may a service account do?

    python deploy/tools/rbac.py deploy/overlays/kubernetes akri:akri-agent

prints every permission the service account `akri/akri-agent` gets from the ClusterRoles,
Roles and bindings of that kustomization (optionally with extra manifest files after it).
tests/test_deploy_rbac.py uses `Authorizer` to enforce these rules in front of the API server
double while the real agent runs, the way kube-apiserver's RBAC authorizer would.

Semantics follow the RBAC authorizer: a request is allowed when any rule of any Role bound in
the request's namespace, or of any ClusterRole bound by a ClusterRoleBinding (or by a
RoleBinding in that namespace), matches its API group, resource (with subresource, as
`instances/finalizers`), verb and, when the rule has resourceNames, its object name. `*`
matches anything. Aggregated ClusterRoles and non-resource URLs are not modelled (the
manifests use neither; discovery URLs are open to every authenticated user anyway).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

#: HTTP paths every authenticated user may read (system:discovery / system:public-info-viewer)
DISCOVERY_PREFIXES = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    """The attributes RBAC decides on, as kube-apiserver derives them from an HTTP request."""

    verb: str
    group: str
    resource: str  # "instances" or "instances/status"
    namespace: str  # "" for cluster-scoped objects and all-namespace lists
    name: str  # "" for collections

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        what = f"{self.group or 'core'}/{self.resource}" + (f" {self.name}" if self.name else "")
        return f"{self.verb} {what}{where}"


def request_from_http(method: str, path: str, query: str | Mapping[str, Any] = "") -> ResourceRequest | None:
    """The RBAC attributes of an HTTP request, or None for a non-resource (discovery) URL.

    /api/v1/namespaces/NS/RESOURCE/NAME/SUB and /apis/GROUP/VERSION/..., with the verb as the
    API server maps it: GET -> get/list/watch, POST -> create, PUT -> update, PATCH -> patch,
    DELETE -> delete/deletecollection.
    """
    params = parse_qs(query) if isinstance(query, str) else {k: [v] for k, v in query.items()}
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return None
    if parts[0] == "api":
        group, rest = "", parts[2:]  # api, v1
        if len(parts) < 2:
            return None
    else:
        if len(parts) < 3:
            return None
        group, rest = parts[1], parts[3:]
    if not rest:
        return None  # discovery of a group version
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else ""), (rest[2] if len(rest) > 2 else "")
    if rest[0] == "namespaces" and len(rest) <= 2:
        resource, name = "namespaces", (rest[1] if len(rest) > 1 else "")
    watch = (params.get("watch") or ["false"])[0].lower() in ("true", "1")
    method = method.upper()
    if method in ("GET", "HEAD"):
        verb = "watch" if watch else ("get" if name else "list")
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = method.lower()
    return ResourceRequest(verb, group, f"{resource}/{sub}" if sub else resource, namespace, name)


@dataclass(frozen=True, slots=True)
class Grant:
    """One rule as it applies to a subject: `namespace` "" means every namespace."""

    namespace: str
    groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    names: tuple[str, ...]
    source: str  # "ClusterRole akri-agent via ClusterRoleBinding akri-agent"

    def allows(self, req: ResourceRequest) -> bool:
        return (
            (not self.namespace or self.namespace == req.namespace)
            and _match(self.groups, req.group)
            and _match(self.resources, req.resource)
            and _match(self.verbs, req.verb)
            and (not self.names or req.name in self.names)
        )

    def permissions(self) -> set[tuple[str, str, str]]:
        """(group, resource, verb) triples this grant names (wildcards kept as `*`)."""
        return {(g, r, v) for g in self.groups for r in self.resources for v in self.verbs}


def _match(allowed: Iterable[str], value: str) -> bool:
    return any(a == "*" or a == value for a in allowed)


class Authorizer:
    """RBAC decisions for service accounts, from the Roles and bindings among `objects`."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.roles: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.bindings: list[Mapping[str, Any]] = []
        for obj in objects:
            if not str(obj.get("apiVersion", "")).startswith("rbac.authorization.k8s.io/"):
                continue
            meta = obj.get("metadata") or {}
            kind = obj.get("kind")
            if kind == "ClusterRole":
                self.roles[("", "ClusterRole:" + meta["name"])] = obj
            elif kind == "Role":
                self.roles[(meta.get("namespace", ""), "Role:" + meta["name"])] = obj
            elif kind in ("RoleBinding", "ClusterRoleBinding"):
                self.bindings.append(obj)

    def grants(self, namespace: str, service_account: str) -> list[Grant]:
        """Every rule that applies to system:serviceaccount:<namespace>:<service_account>."""
        out: list[Grant] = []
        for binding in self.bindings:
            if not any(_is_subject(s, namespace, service_account) for s in binding.get("subjects") or []):
                continue
            meta = binding.get("metadata") or {}
            scope = "" if binding["kind"] == "ClusterRoleBinding" else meta.get("namespace", "")
            ref = binding["roleRef"]
            role_ns = "" if ref["kind"] == "ClusterRole" else meta.get("namespace", "")
            role = self.roles.get((role_ns, f"{ref['kind']}:{ref['name']}"))
            if role is None:
                continue  # a binding to a missing role grants nothing (as in the API server)
            source = f"{ref['kind']} {ref['name']} via {binding['kind']} {meta.get('name')}"
            for rule in role.get("rules") or []:
                if rule.get("nonResourceURLs"):
                    continue
                out.append(
                    Grant(
                        namespace=scope,
                        groups=tuple(rule.get("apiGroups") or ()),
                        resources=tuple(rule.get("resources") or ()),
                        verbs=tuple(rule.get("verbs") or ()),
                        names=tuple(rule.get("resourceNames") or ()),
                        source=source,
                    )
                )
        return out

    def allowed(self, namespace: str, service_account: str, req: ResourceRequest) -> bool:
        return any(g.allows(req) for g in self.grants(namespace, service_account))


def _is_subject(subject: Mapping[str, Any], namespace: str, name: str) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        return subject.get("name") == name and subject.get("namespace") == namespace
    if kind == "Group":
        return subject.get("name") in (
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        )
    if kind == "User":
        return subject.get("name") == f"system:serviceaccount:{namespace}:{name}"
    return False


def main(argv: list[str] | None = None) -> int:
    import yaml
    from render import render  # deploy/tools/render.py, next to this file

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or ":" not in args[1]:
        sys.stderr.write("usage: rbac.py KUSTOMIZATION_DIR NAMESPACE:SERVICEACCOUNT [EXTRA.yaml ...]\n")
        return 2
    objects = render(args[0])
    for extra in args[2:]:
        with open(extra) as f:
            objects += [d for d in yaml.safe_load_all(f) if d]
    ns, sa = args[1].split(":", 1)
    for g in Authorizer(objects).grants(ns, sa):
        names = f" names={','.join(g.names)}" if g.names else ""
        print(
            f"{g.namespace or '*':10} {','.join(g.groups) or 'core':28} {','.join(g.resources):40} "
            f"{','.join(g.verbs)}{names}   ({g.source})"
        )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
    sys.exit(main())
