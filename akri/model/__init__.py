"""akri.model: Akri's API objects and the names derived from them.

- `configuration`, `instance`: typed Configuration / Instance (akri.sh/v0) with canonical JSON
- `naming`: Instance, CDI, slot, resource, broker Pod/Job and Service names (the one naming module)
- `usage`: Instance deviceUsage values and slot vectors
- `validation`: the admission rules shared by `akri validate` and the webhook
- `crds`: the CustomResourceDefinitions; `manifests`: reading YAML manifests like kubectl
"""
