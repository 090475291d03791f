"""What a container gets from `Allocate`: env vars, mounts, device nodes, CDI names (spec §4.10).

One `ContainerAllocateResponse` per container request, whatever the number of devices in it
(upstream's configuration plugin answered one per device id, which the kubelet cannot map
back to containers). For each device, in request order:

* every broker property `K=V` twice: `K=V` and `K_<HASH>=V`, HASH = the device's digest
  upper-cased (`DEBUG_ECHO_DESCRIPTION_D46B65=bar0`); the suffixed names stay unambiguous
  when one container gets several devices of the same handler, the plain ones are last-wins;
* its mounts and device nodes (a device node without host path uses the container path);
* its annotations;
* optionally its fully qualified CDI name (`akri.sh/<config>=<digest>`) in `cdi_devices`.
  Off by default: Akri keeps its CDI specs in memory and writes none to /etc/cdi or
  /var/run/cdi, and a container runtime with CDI enabled fails containers whose CDI device
  names it cannot resolve. Turn it on only where CDI spec files for Akri devices exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from akri._proto import deviceplugin_pb2 as dp
from akri.agent.plugins.view import InstanceView


def container_response(views: Sequence[InstanceView], *, cdi_devices: bool = False) -> Any:
    envs: dict[str, str] = {}
    annotations: dict[str, str] = {}
    mounts: list[Any] = []
    devices: list[Any] = []
    cdi: list[Any] = []
    seen_views: set[str] = set()
    seen_mounts: set[tuple[str, str, bool]] = set()
    seen_devices: set[tuple[str, str, str]] = set()
    for view in views:
        if view.name in seen_views:  # two ids of one Instance in one container: one device
            continue
        seen_views.add(view.name)
        suffix = view.digest_hash
        for key, value in view.properties.items():
            envs[key] = value
            envs[f"{key}_{suffix}"] = value
        annotations.update(view.annotations)
        for m in view.mounts:
            mk = (m.container_path, m.host_path, m.read_only)
            if mk not in seen_mounts:
                seen_mounts.add(mk)
                mounts.append(
                    dp.Mount(container_path=m.container_path, host_path=m.host_path, read_only=m.read_only)
                )
        for d in view.device_specs:
            dk = (d.container_path, d.host_path or d.container_path, d.permissions or "")
            if dk not in seen_devices:
                seen_devices.add(dk)
                devices.append(dp.DeviceSpec(container_path=dk[0], host_path=dk[1], permissions=dk[2]))
        if cdi_devices and view.cdi_name:
            cdi.append(dp.CDIDevice(name=view.cdi_name))
    return dp.ContainerAllocateResponse(
        envs=envs, mounts=mounts, devices=devices, annotations=annotations, cdi_devices=cdi
    )
