"""Every name Akri derives from another (spec §2, §3.1, §6): the one naming module.

Instance names must be byte-identical to upstream's so our agent and upstream's controller,
dashboards and scripts agree: `<configuration>-<digest>` with digest = BLAKE2b-3 (6 lowercase
hex characters) of the device id, plus the node name when the device is local to a node.
Pod, Job and Service names replace `.` by `-` in the instance name (they must be DNS labels);
Instance names themselves are never normalised.
"""

from __future__ import annotations

from collections.abc import Iterable

from akri import _fast
from akri.model.constants import AKRI_PREFIX


def _digest_input(device_id: str, shared: bool, node: str | None) -> str:
    if shared:
        return device_id
    if node is None:
        raise ValueError("a local (not shared) device needs the node name to be named")
    # Plain concatenation, no separator: upstream's `id + nodeName`.
    return device_id + node


def device_digest(device_id: str, *, shared: bool, node: str | None = None) -> str:
    """The 6-hex-character digest naming a device: of `id` if shared, else of `id + node`."""
    return _fast.digest_hex(_digest_input(device_id, shared, node))


def instance_name(configuration_name: str, device_id: str, *, shared: bool, node: str | None = None) -> str:
    """`<configurationName>-<digest>` (e.g. `my_config-e77db4`)."""
    return f"{configuration_name}-{device_digest(device_id, shared=shared, node=node)}"


def instance_names(
    configuration_name: str, device_ids: Iterable[str], *, shared: bool, node: str | None = None
) -> list[str]:
    """`instance_name` for many devices of one Configuration at once (a rescan), in input order."""
    inputs = [_digest_input(d, shared, node) for d in device_ids]
    return [f"{configuration_name}-{digest}" for digest in _fast.digest_hex_batch(inputs)]


def cdi_kind(configuration_name: str) -> str:
    """The CDI kind holding a Configuration's devices: `akri.sh/<configurationName>`."""
    return f"{AKRI_PREFIX}/{configuration_name}"


def cdi_name(
    configuration_name: str,
    digest: str | None = None,
    *,
    device_id: str | None = None,
    shared: bool | None = None,
    node: str | None = None,
) -> str:
    """Fully qualified CDI device name `akri.sh/<configurationName>=<digest>`.

    Give the digest, or the device (`device_id=`, `shared=`, `node=`) to compute it.
    """
    if digest is None:
        if device_id is None or shared is None:
            raise TypeError("cdi_name needs a digest, or device_id and shared")
        digest = device_digest(device_id, shared=shared, node=node)
    return f"{cdi_kind(configuration_name)}={digest}"


def resource_name(name: str) -> str:
    """Kubelet extended resource of an Instance or a Configuration: `akri.sh/<name>`."""
    return f"{AKRI_PREFIX}/{name}"


def slot_id(instance_name: str, index: int) -> str:
    """Kubelet device id of slot `index` of an Instance, also its deviceUsage key: `<instance>-<i>`."""
    return f"{instance_name}-{index}"


def slot_index(slot: str) -> int:
    """The slot number: the decimal number after the last `-` (`my-other-slot-2` -> 2).

    ValueError when there is no `-` or what follows it is not a plain decimal number.
    """
    _, sep, tail = slot.rpartition("-")
    # isascii+isdigit: int() alone would accept "+1", " 1", "1_0" and non-ASCII digits.
    if not sep or not tail or not (tail.isascii() and tail.isdigit()):
        raise ValueError(f"not a slot id (expected <name>-<number>): {slot!r}")
    return int(tail)


def _dns_label(name: str) -> str:
    return name.replace(".", "-")


def broker_app_name(instance_name: str, node: str | None, shared: bool, suffix: str) -> str:
    """Upstream's `create_broker_app_name`: `<node>-<instance>-<suffix>` for a shared device
    (its Instance name has no node in it), else `<instance>-<suffix>`; dots in the instance
    name become `-` (the node name is kept as is)."""
    normalized = _dns_label(instance_name)
    if shared and node is not None:
        return f"{node}-{normalized}-{suffix}"
    return f"{normalized}-{suffix}"


def broker_pod_name(instance_name: str, node: str, shared: bool) -> str:
    """Broker Pod for an Instance on a node: `node-a-config-a-359973-pod`, `config-a-b494b6-pod`."""
    return broker_app_name(instance_name, node, shared, "pod")


def broker_job_name(instance_name: str, generation: int) -> str:
    """Broker Job for an Instance at a Configuration generation: `<instance>-<generation>-job`
    (never node-prefixed, even for shared devices)."""
    return broker_app_name(instance_name, None, False, f"{generation}-job")


def service_app_name(configuration_name: str, instance_name: str, suffix: str, instance_level: bool) -> str:
    """Upstream's `create_service_app_name`: the instance name (dots -> `-`) for an
    instance-level Service, else the configuration name, then `-<suffix>`.

    Unlike upstream's older helper, the configuration name is normalised too: a Service
    name must be a DNS label and Configuration names may contain dots.
    """
    base = instance_name if instance_level else configuration_name
    return f"{_dns_label(base)}-{suffix}"


def instance_service_name(instance_name: str) -> str:
    """Service in front of one Instance's brokers: `config-a-359973-svc`."""
    return service_app_name("", instance_name, "svc", True)


def configuration_service_name(configuration_name: str) -> str:
    """Service in front of all brokers of a Configuration: `config-a-svc`."""
    return service_app_name(configuration_name, "", "svc", False)
