"""The parts of `metadata` Akri reads, typed, with the original object kept for writing back."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from akri.model._parse import Reader
from akri.model.constants import DEFAULT_NAMESPACE, GROUP_VERSION


@dataclass(frozen=True)
class ObjectMetadata:
    name: str
    namespace: str = DEFAULT_NAMESPACE
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    finalizers: list[str] = field(default_factory=list)
    owner_references: list[dict[str, Any]] = field(default_factory=list)
    deletion_timestamp: str | None = None
    #: the metadata object as read (every field, also those not typed above)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def read(cls, reader: Reader, value: Any, path: str = "metadata") -> ObjectMetadata | None:
        """Read metadata, recording problems in `reader`; None when unusable."""
        meta = reader.mapping(value, path) if value is not None else None
        if meta is None:
            if value is None:
                reader.error(path, "required")
            return None
        name = reader.string(meta, "name", path, required=True, non_empty=True)
        namespace = reader.string(meta, "namespace", path, default=DEFAULT_NAMESPACE) or DEFAULT_NAMESPACE
        uid = reader.string(meta, "uid", path)
        generation = reader.integer(meta, "generation", path, minimum=0)
        resource_version = reader.string(meta, "resourceVersion", path)
        labels = reader.string_map(meta, "labels", path)
        annotations = reader.string_map(meta, "annotations", path)
        finalizers = reader.string_list(meta, "finalizers", path)
        owners = reader.items(meta, "ownerReferences", path, lambda v, p: reader.mapping(v, p))
        deletion = meta.get("deletionTimestamp")
        if name is None:
            return None
        return cls(
            name=name,
            namespace=namespace,
            uid=uid,
            generation=generation,
            resource_version=resource_version,
            labels=labels,
            annotations=annotations,
            finalizers=finalizers,
            owner_references=owners or [],
            deletion_timestamp=deletion if isinstance(deletion, str) else None,
            raw=meta,
        )

    def to_dict(self) -> dict[str, Any]:
        """The metadata object (a copy of what was read, or the typed fields if built in code)."""
        if self.raw:
            return copy.deepcopy(self.raw)
        out: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.uid is not None:
            out["uid"] = self.uid
        if self.generation is not None:
            out["generation"] = self.generation
        if self.resource_version is not None:
            out["resourceVersion"] = self.resource_version
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.finalizers:
            out["finalizers"] = list(self.finalizers)
        if self.owner_references:
            out["ownerReferences"] = copy.deepcopy(self.owner_references)
        return out


class AkriObject:
    """What Configuration and Instance share: metadata accessors, the whole-object envelope
    (apiVersion, kind, metadata, spec) read with every problem listed, and serialisation.

    Subclasses are frozen dataclasses with fields `metadata`, `spec`, `api_version`, `kind`
    and set KIND and `read_spec(reader, spec, path)`.
    """

    KIND: str
    metadata: ObjectMetadata
    spec: Any
    api_version: str
    kind: str

    @staticmethod
    def read_spec(reader: Reader, spec: Any, path: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def uid(self) -> str | None:
        return self.metadata.uid

    @property
    def generation(self) -> int | None:
        return self.metadata.generation

    @classmethod
    def from_dict(cls, obj: Any) -> Any:
        """Read a whole object; ValidationError lists every problem with its field path."""
        reader = Reader()
        if not isinstance(obj, dict):
            reader.mapping(obj, "")
            reader.raise_if_errors()
        api_version = reader.string(obj, "apiVersion", "", default=GROUP_VERSION)
        kind = reader.string(obj, "kind", "", default=cls.KIND)
        if kind != cls.KIND:
            reader.error("kind", f"expected {cls.KIND!r}, got {kind!r}")
        metadata = ObjectMetadata.read(reader, obj.get("metadata"))
        spec = cls.read_spec(reader, obj.get("spec"), "spec")
        reader.raise_if_errors()
        assert metadata is not None and spec is not None  # no errors recorded
        return cls(metadata=metadata, spec=spec, api_version=api_version or GROUP_VERSION)  # type: ignore[call-arg]

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": copy.deepcopy(self.metadata.to_dict()),
            "spec": self.spec.to_dict(),
        }
