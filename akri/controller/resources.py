"""Kubernetes kinds the controller reads and writes (defined once, in akri.kube.resources)."""

from akri.kube.resources import Configuration, Instance, Job, Node, Pod, Service

__all__ = ["Configuration", "Instance", "Job", "Node", "Pod", "Service"]
