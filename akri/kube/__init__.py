"""The one place that talks to the Kubernetes API (a thin HTTP/1.1 client; every object a plain dict).

kube = Kube.from_config()            # --kubeconfig path, KUBECONFIG, in-cluster, ~/.kube/config
obj = await kube.get_or_none(Instance, "my-instance", "default")
await kube.update_with_retry(Instance, name, ns, mutate)   # read-modify-write on resourceVersion
async for event in Informer(kube, Configuration).events(): ...   # resumable list+watch
"""

from akri.kube.api import DELETE, Kube, has_finalizer
from akri.kube.config import KubeConfigError, default_namespace, load_config, make_async_client
from akri.kube.errors import (
    ApiError,
    InvalidRequest,
    TransportError,
    describe,
    is_conflict,
    is_gone,
    is_not_found,
    is_transient,
    status_code,
)
from akri.kube.resources import (
    ALL_NAMESPACES,
    API_VERSION,
    ConfigMap,
    Configuration,
    Instance,
    Resource,
    Secret,
    object_key,
)
from akri.kube.watch import Informer, WatchEvent

__all__ = [
    "ALL_NAMESPACES",
    "API_VERSION",
    "DELETE",
    "ApiError",
    "ConfigMap",
    "Configuration",
    "Informer",
    "Instance",
    "InvalidRequest",
    "Kube",
    "KubeConfigError",
    "Resource",
    "Secret",
    "TransportError",
    "WatchEvent",
    "default_namespace",
    "describe",
    "has_finalizer",
    "is_conflict",
    "is_gone",
    "is_not_found",
    "is_transient",
    "load_config",
    "make_async_client",
    "object_key",
    "status_code",
]
