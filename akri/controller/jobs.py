"""Broker Jobs: one per Instance and Configuration generation (spec §6.3, upstream `job.rs`).

The Job's name carries the Configuration's `metadata.generation`, so editing the Configuration
gives a new Job name: the controller deletes Jobs of older generations and creates the new one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from akri.controller.brokers import (
    APP_LABEL,
    CONFIGURATION_LABEL,
    CONTROLLER_LABEL,
    CONTROLLER_VALUE,
    INSTANCE_LABEL,
    owner_reference,
    replace_placeholder,
)
from akri.model.constants import INSTANCE_KIND
from akri.model.naming import broker_job_name, resource_name


def build_broker_job(
    *,
    instance_name: str,
    instance_uid: str,
    namespace: str,
    configuration_name: str,
    generation: int,
    job_spec: Mapping[str, Any],
) -> dict[str, Any]:
    """The broker Job for `instance_name` (upstream `create_new_job_from_spec`).

    Labels `akri.sh/configuration`, `akri.sh/instance`, `app=<job>`, `controller=akri.sh`; the Pod
    template gets the configuration and instance labels too; `{{PLACEHOLDER}}` in the template's
    containers becomes `akri.sh/<instance>`; no node affinity (the resource request already
    limits the Pod to nodes that advertise the device); `parallelism`, `completions`,
    `backoffLimit` and `restartPolicy` stay the user's.
    """
    name = broker_job_name(instance_name, generation)
    spec = copy.deepcopy(dict(job_spec))
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    template_meta = template.get("metadata")
    if not isinstance(template_meta, dict):
        template_meta = template["metadata"] = {}
    template_labels = template_meta.get("labels")
    if not isinstance(template_labels, dict):
        template_labels = template_meta["labels"] = {}
    template_labels[CONFIGURATION_LABEL] = configuration_name
    template_labels[INSTANCE_LABEL] = instance_name
    pod_spec = template.get("spec")
    if isinstance(pod_spec, dict):
        template["spec"] = replace_placeholder(pod_spec, resource_name(instance_name))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                CONFIGURATION_LABEL: configuration_name,
                INSTANCE_LABEL: instance_name,
                APP_LABEL: name,
                CONTROLLER_LABEL: CONTROLLER_VALUE,
            },
            "ownerReferences": [owner_reference(INSTANCE_KIND, instance_name, instance_uid)],
        },
        "spec": spec,
    }
