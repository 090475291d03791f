"""The kubelet side of the agent: device plugins, their registration, slot claims and reclaim.

What the cluster side uses:

* `PluginManager(node, store, directory=...)`: `await start()`, `await apply_instance(InstanceView)`,
  `await remove_instance(name)`, `await stop()`; also an `InstanceListener`
  (`instance_changed(NodeInstance)`, `instance_removed(namespace, name)`).
* `SlotStore`: the protocol it implements (`claim`, `release`; see slot_store.py).
* `SlotReclaimer(manager.plugins, pod_resources_socket=..., interval=10, grace=20)`: `await start()`.
"""

from akri.agent.plugins.configuration_plugin import ConfigurationPlugin
from akri.agent.plugins.instance_plugin import InstancePlugin
from akri.agent.plugins.manager import DEFAULT_DEVICE_PLUGIN_DIR, PluginManager
from akri.agent.plugins.reclaimer import DEFAULT_POD_RESOURCES_SOCKET, SlotReclaimer
from akri.agent.plugins.slot_store import MemorySlotStore, SlotStore, SlotStoreUnavailable
from akri.agent.plugins.view import InstanceView

__all__ = [
    "DEFAULT_DEVICE_PLUGIN_DIR",
    "DEFAULT_POD_RESOURCES_SOCKET",
    "ConfigurationPlugin",
    "InstancePlugin",
    "InstanceView",
    "MemorySlotStore",
    "PluginManager",
    "SlotReclaimer",
    "SlotStore",
    "SlotStoreUnavailable",
]
