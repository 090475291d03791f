"""Kubernetes kinds the controller reads and writes, as lightkube *generic* resources.

Generic resources decode to plain dicts. The controller keeps every broker Pod, Job, Service and
Node in memory and reads a few fields of each; typed models would cost far more memory and
conversion time at a thousand Instances, and the builders produce plain JSON anyway.
"""

from __future__ import annotations

from lightkube.generic_resource import create_global_resource, create_namespaced_resource

from akri.kube.resources import Configuration, Instance

Pod = create_namespaced_resource("", "v1", "Pod", "pods")
Service = create_namespaced_resource("", "v1", "Service", "services")
Node = create_global_resource("", "v1", "Node", "nodes")
Job = create_namespaced_resource("batch", "v1", "Job", "jobs")

__all__ = ["Configuration", "Instance", "Job", "Node", "Pod", "Service"]
