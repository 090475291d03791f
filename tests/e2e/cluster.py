"""The cluster as a user's script sees it: the official `kubernetes` client against the API double
(upstream's e2e suite drives Akri the same way)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException

GROUP, VERSION = "akri.sh", "v0"


def debug_echo_configuration(name: str, descriptions: list[str], *, capacity: int = 2,
                             broker_properties: dict[str, str] | None = None) -> dict[str, Any]:
    """A debugEcho Configuration like upstream's e2e `debugEchoConfiguration.yaml` (no broker)."""
    details = "descriptions:\n" + "".join(f"  - {d}\n" for d in descriptions)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Configuration",
        "metadata": {"name": name},
        "spec": {
            "discoveryHandler": {"name": "debugEcho", "discoveryDetails": details},
            "capacity": capacity,
            "brokerProperties": broker_properties or {},
        },
    }


def udev_configuration(name: str, rules: list[str], *, capacity: int = 1) -> dict[str, Any]:
    details = "udevRules:\n" + "".join(f"  - '{r}'\n" for r in rules)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Configuration",
        "metadata": {"name": name},
        "spec": {"discoveryHandler": {"name": "udev", "discoveryDetails": details}, "capacity": capacity},
    }


class Cluster:
    def __init__(self, kubeconfig: Path, namespace: str = "default") -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        self.api_client = client.ApiClient(configuration)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.namespace = namespace

    def close(self) -> None:
        self.api_client.close()

    # --- Configurations --------------------------------------------------------------------
    def apply_configuration(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "configurations",
                                                           body)

    def configuration(self, name: str) -> dict[str, Any] | None:
        return self._get("configurations", name)

    def delete_configuration(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, "configurations", name)

    # --- Instances -------------------------------------------------------------------------
    def instances(self, configuration: str | None = None) -> dict[str, dict[str, Any]]:
        """name -> Instance (of one Configuration when given)."""
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "instances")
        items = listed["items"]
        return {i["metadata"]["name"]: i for i in items
                if configuration is None or i["spec"]["configurationName"] == configuration}

    def instance(self, name: str) -> dict[str, Any] | None:
        return self._get("instances", name)

    def uids(self, configuration: str) -> dict[str, str]:
        return {name: i["metadata"]["uid"] for name, i in self.instances(configuration).items()}

    def _get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
