"""Names fixed by upstream Akri's API (spec §1): group, version, kinds, plurals, prefixes."""

from __future__ import annotations

API_GROUP = "akri.sh"
API_VERSION = "v0"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"  # the apiVersion of Configurations and Instances

CONFIGURATION_KIND = "Configuration"
CONFIGURATION_PLURAL = "configurations"
CONFIGURATION_SINGULAR = "configuration"
CONFIGURATION_SHORT_NAME = "akric"

INSTANCE_KIND = "Instance"
INSTANCE_PLURAL = "instances"
INSTANCE_SINGULAR = "instance"
INSTANCE_SHORT_NAME = "akrii"

# Prefix of extended resource names, CDI kinds and akri labels.
AKRI_PREFIX = "akri.sh"

DEFAULT_NAMESPACE = "default"
