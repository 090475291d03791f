"""A Kubernetes API server double for tests: real HTTP, the real API's semantics, no cluster.

Start it with `python -m akri.testing.apiserver --port 0 --kubeconfig FILE` (prints
`listening on http://127.0.0.1:PORT`), `async with ApiServer() as api` (in the test's loop) or
`with ApiServerThread() as api` (own thread, for sync clients). `--tls` / `tls=True` serves HTTPS
with a throwaway CA that the kubeconfig carries (`api.ca_pem`), as real clusters do.
`api.url`, `api.kubeconfig_path`, `api.store` (assertions and direct writes: `get_object`,
`list_objects`, `create_object`, `patch_object`, `delete_object`, `set_pod_phase`,
`close_watches`), `stop()`/`start()` (same port, same data, same watch history).
pytest fixtures: `akri.testing.fixtures`.

What behaves like kube-apiserver (lightkube, the official `kubernetes` client, its DynamicClient
and kubectl are tested against it):
- discovery (/version, /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>) and a minimal OpenAPI v3
  (enough for `kubectl apply`); types in `resources.py`, plus any CustomResourceDefinition created;
- create (201, 409 AlreadyExists, generateName, namespace from the URL, 400 on a mismatch),
  get, list (namespaced and all-namespaces), PUT, DELETE (the object, or a Status for types
  whose real DELETE answers one), deletecollection; errors are `Status` objects;
- uid, one cluster-wide resourceVersion counter, creationTimestamp, generation (bumped by
  changes outside metadata and, with a status subresource, outside status); a no-op write keeps
  the resourceVersion; a stale resourceVersion is 409 Conflict; PUT without one is allowed for
  built-in types and 422 for custom resources (as the real API);
- status subresources (pods, services, nodes, namespaces, jobs, deployments, daemonsets, CRDs):
  /status changes only status, the main endpoint ignores status; Akri's CRDs have none;
- JSON merge patch, JSON patch (RFC 6902 with test), strategic merge patch (see below; 415 for
  custom resources, as the real API), server-side apply (see below);
- labelSelector (=, ==, !=, in, notin, exists, !exists, gt, lt) and fieldSelector (=, ==, != on
  metadata.name/namespace and the per-type fields the real API supports; others are 400);
- limit/continue paging (later pages are cut from the current state, not a snapshot, but carry
  the first page's resourceVersion, so a watch from it misses nothing);
- watch: watch=true/1/True, from a resourceVersion exactly the later events (history of
  `history_size` events per type; older is an ERROR event with a 410 Expired Status), without one
  synthetic ADDED first, selector transitions as ADDED/DELETED, timeoutSeconds, BOOKMARKs
  (every `bookmark_interval` seconds and at the timeout), sendInitialEvents; DELETED carries the
  final object with a new resourceVersion; Table output for kubectl;
- finalizers and deletionTimestamp (no finalizers may be added while deleting); ownerReference
  garbage collection with Background/Foreground/Orphan (batch/v1 Jobs default to Orphan, as the
  real API), including dependents whose owner never existed.

Known limits:
- strategic merge patch is merge patch plus list merging by a fixed table of patch merge keys
  (containers/volumes/env by name, conditions/addresses by type, ownerReferences by uid, ports),
  `finalizers` as a set, and the $patch/$deleteFromPrimitiveList/$retainKeys directives;
- server-side apply is a merge of the applied configuration (strategic for built-in types) that
  requires fieldManager and records a managedFields entry; no field ownership, no conflicts, no
  removal of fields a manager stops applying;
- namespaces are not enforced: objects may be created in a namespace that does not exist;
  deleting a Namespace deletes its contents (no Terminating phase);
- no admission, no schema validation (only ObjectMeta rules: names, labels, annotations,
  finalizers, ownerReferences), no authentication (the kubeconfig token is ignored);
- Pods are deleted at once (no graceful termination: there is no kubelet to confirm it);
- JSON and YAML bodies only: kubectl's typed generators (`kubectl create namespace ...`) send
  protobuf and get 415; `kubectl create/apply -f` work.
"""

from .errors import ApiError
from .resources import AKRI_RESOURCES, BUILTIN_RESOURCES, ResourceRegistry, ResourceType, custom_resource
from .server import ApiServer, ApiServerThread, kubeconfig_dict, write_kubeconfig
from .store import Store

__all__ = [
    "AKRI_RESOURCES",
    "BUILTIN_RESOURCES",
    "ApiError",
    "ApiServer",
    "ApiServerThread",
    "ResourceRegistry",
    "ResourceType",
    "Store",
    "custom_resource",
    "kubeconfig_dict",
    "write_kubeconfig",
]
