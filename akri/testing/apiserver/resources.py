"""The resource types the API double serves: one table drives discovery, routing and storage.

Each entry carries the per-type behaviour of the real kube-apiserver that clients can observe
(scope, status subresource, whether PUT needs a resourceVersion, what DELETE returns, the default
garbage-collection policy, which fieldSelector labels are supported). Everything else is generic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")
ALWAYS_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    # CRD-backed types: strategic merge patch is rejected (415) and PUT needs a resourceVersion.
    custom: bool = False
    # The real API lets leases (and events) be created by PUT.
    create_on_update: bool = False
    # PUT without metadata.resourceVersion: allowed for most built-in types, 422 for leases and CRs.
    unconditional_update: bool = True
    # Pods, services and custom resources answer DELETE with the object; the others with a Status.
    return_deleted_object: bool = False
    # batch/v1 Jobs still orphan their Pods unless told otherwise (kept for backwards compatibility).
    default_propagation: str = "Background"
    # fieldSelector labels the real API supports for this type, besides metadata.name/namespace.
    field_labels: frozenset[str] = frozenset()
    # "subdomain" (RFC 1123 subdomain) or "label" (RFC 1123 label: namespaces, services).
    name_format: str = "subdomain"
    verbs: tuple[str, ...] = ALL_VERBS
    singular: str = field(default="")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """Storage key: one version per group/resource is served, so the version is not part of it."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def group_resource(self) -> str:
        """`instances.akri.sh` / `pods`: how the real API names a type in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def supports_field(self, label: str) -> bool:
        return label in ALWAYS_FIELDS or label in self.field_labels


def _core(plural: str, kind: str, **kw) -> ResourceType:
    return ResourceType("", "v1", plural, kind, **kw)


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _core(
        "pods",
        "Pod",
        namespaced=True,
        short_names=("po",),
        categories=("all",),
        status_subresource=True,
        return_deleted_object=True,
        field_labels=frozenset(
            {
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            }
        ),
    ),
    _core(
        "services",
        "Service",
        namespaced=True,
        short_names=("svc",),
        categories=("all",),
        status_subresource=True,
        return_deleted_object=True,
        name_format="label",
    ),
    _core(
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        status_subresource=True,
        field_labels=frozenset({"spec.unschedulable"}),
    ),
    _core("secrets", "Secret", namespaced=True, field_labels=frozenset({"type"})),
    _core("configmaps", "ConfigMap", namespaced=True, short_names=("cm",)),
    _core(
        "events",
        "Event",
        namespaced=True,
        short_names=("ev",),
        create_on_update=True,
        field_labels=frozenset(
            {
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            }
        ),
    ),
    _core(
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        status_subresource=True,
        field_labels=frozenset({"status.phase"}),
        name_format="label",
    ),
    _core("serviceaccounts", "ServiceAccount", namespaced=True, short_names=("sa",)),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        namespaced=True,
        short_names=("deploy",),
        categories=("all",),
        status_subresource=True,
    ),
    ResourceType(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        namespaced=True,
        short_names=("ds",),
        categories=("all",),
        status_subresource=True,
    ),
    ResourceType(
        "batch",
        "v1",
        "jobs",
        "Job",
        namespaced=True,
        categories=("all",),
        status_subresource=True,
        default_propagation="Orphan",
        field_labels=frozenset({"status.successful"}),
    ),
    ResourceType(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        namespaced=True,
        create_on_update=True,
        unconditional_update=False,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        status_subresource=True,
    ),
)


def custom_resource(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short_names: Iterable[str] = (),
    categories: Iterable[str] = (),
    status_subresource: bool = False,
    singular: str = "",
) -> ResourceType:
    """A CRD-backed type, with the real API's custom-resource rules."""
    return ResourceType(
        group,
        version,
        plural,
        kind,
        namespaced=namespaced,
        short_names=tuple(short_names),
        categories=tuple(categories),
        status_subresource=status_subresource,
        custom=True,
        unconditional_update=False,
        return_deleted_object=True,
        singular=singular,
    )


# Akri's CRDs (upstream deploys them without subresources): served from the start, so the agent and
# controller work without a CRD install step.
AKRI_RESOURCES: tuple[ResourceType, ...] = (
    custom_resource("akri.sh", "v0", "configurations", "Configuration", short_names=("akric",)),
    custom_resource("akri.sh", "v0", "instances", "Instance", short_names=("akrii",)),
)


class ResourceRegistry:
    """The set of served types, looked up by URL parts, by apiVersion+kind, or by a name a test uses."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_RESOURCES + AKRI_RESOURCES) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        self._by_gvk: dict[tuple[str, str], ResourceType] = {}
        for rt in types:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._by_gvr[(rt.group, rt.version, rt.plural)] = rt
        self._by_gvk[(rt.api_version, rt.kind)] = rt

    def remove(self, rt: ResourceType) -> None:
        self._by_gvr.pop((rt.group, rt.version, rt.plural), None)
        self._by_gvk.pop((rt.api_version, rt.kind), None)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_gvr.values()))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_gvk.get((api_version, kind))

    def find(self, name: str) -> ResourceType:
        """Resolve what a test writes: `instances`, `akrii`, `Instance`, `instances.akri.sh`, `pods`."""
        plural, _, group = name.partition(".")
        for rt in self._by_gvr.values():
            if group and rt.group != group:
                continue
            if plural in (rt.plural, rt.kind, rt.singular_name) or plural in rt.short_names:
                return rt
        raise KeyError(f"unknown resource {name!r}")

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions, in registration order."""
        out: dict[str, list[str]] = {}
        for rt in self._by_gvr.values():
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out
