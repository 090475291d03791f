"""Camera credentials from the discovery properties (upstream `credential_store.rs`, spec §5.4).

Four forms, applied in this order; a later one overwrites an earlier one for the same id:

1. `device_credential_list`: a JSON array of property names; each of those properties holds
   JSON `{"<uuid>": {"username": s, "password": s?, "base64encoded": bool?}}` (the password is
   base64-decoded when `base64encoded` is true).
2. `device_credential_ref_list`: a JSON array of property names; each holds
   `{"<uuid>": {"username_ref": name, "password_ref": name?}}`, naming the properties that hold
   the username and password (an empty or unreadable username drops the entry).
3. `username_<id>` / `password_<id>` pairs; `<id>` is the uuid in C-identifier form (`-`
   written as `_`), converted back here.
4. `username_default` / `password_default`: the credential of every camera without its own.

Lookup: the camera's uuid, else `default`. Property values arrive as bytes (or None);
values that are not UTF-8 are ignored, as upstream. Unlike upstream, ids are compared in the
normalised form of camera uuids (lower case, without `urn:uuid:`), and a malformed entry
is logged (naming the property) and skipped alone instead of silently dropping its whole
list.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from akri.discovery.handlers.onvif.wsdiscovery import device_uuid

log = logging.getLogger(__name__)

CREDENTIAL_LIST = "device_credential_list"
CREDENTIAL_REF_LIST = "device_credential_ref_list"
USERNAME_PREFIX = "username_"
PASSWORD_PREFIX = "password_"
DEFAULT_ID = "default"


@dataclass(frozen=True, slots=True)
class Credential:
    username: str
    password: str | None = None

    def __repr__(self) -> str:  # never print a password in a log line
        return f"Credential(username={self.username!r}, password={'***' if self.password else None})"


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _normalise(credential_id: str) -> str:
    return DEFAULT_ID if credential_id == DEFAULT_ID else device_uuid(credential_id)


class CredentialStore:
    def __init__(self, credentials: Mapping[str, Credential] | None = None) -> None:
        self._credentials: dict[str, Credential] = {
            _normalise(k): v for k, v in (credentials or {}).items()}

    def __len__(self) -> int:
        return len(self._credentials)

    def __contains__(self, credential_id: str) -> bool:
        return _normalise(credential_id) in self._credentials

    def get(self, uuid: str) -> Credential | None:
        return self._credentials.get(_normalise(uuid)) or self._credentials.get(DEFAULT_ID)

    def as_dict(self) -> dict[str, Credential]:
        return dict(self._credentials)

    @classmethod
    def from_properties(cls, properties: Mapping[str, bytes | str | None] | None) -> CredentialStore:
        props = dict(properties or {})
        store: dict[str, Credential] = {}
        store.update(_from_credential_lists(props))
        store.update(_from_reference_lists(props))
        store.update(_from_username_password(props))
        default = _text(props.get(USERNAME_PREFIX + DEFAULT_ID))
        if default is not None:
            store[DEFAULT_ID] = Credential(default, _text(props.get(PASSWORD_PREFIX + DEFAULT_ID)))
        return cls(store)


def _json_property(props: Mapping[str, Any], name: str) -> Any:
    raw = _text(props.get(name))
    if raw is None:
        if props.get(name) is not None:
            log.warning("onvif credentials: property %r is not UTF-8; ignored", name)
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        log.warning("onvif credentials: property %r is not valid JSON (%s); ignored", name, exc)
        return None


def _listed_maps(props: Mapping[str, Any], list_name: str) -> list[tuple[str, dict[str, Any]]]:
    """The (property name, JSON object) pairs named by the JSON array in `list_name`."""
    names = _json_property(props, list_name)
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        log.warning("onvif credentials: property %r must be a JSON array of property names; ignored",
                    list_name)
        return []
    maps = []
    for name in names:
        if name not in props:
            log.warning("onvif credentials: %r names property %r, which is not set", list_name, name)
            continue
        content = _json_property(props, name)
        if content is None:
            continue
        if not isinstance(content, dict):
            log.warning("onvif credentials: property %r must be a JSON object of uuid -> credential; "
                        "ignored", name)
            continue
        maps.append((name, content))
    return maps


def _from_credential_lists(props: Mapping[str, Any]) -> dict[str, Credential]:
    found: dict[str, Credential] = {}
    for prop, content in _listed_maps(props, CREDENTIAL_LIST):
        for device_id, entry in content.items():
            username = entry.get("username") if isinstance(entry, dict) else None
            password = entry.get("password") if isinstance(entry, dict) else None
            encoded = entry.get("base64encoded", False) if isinstance(entry, dict) else False
            if not isinstance(username, str) or not (password is None or isinstance(password, str)) \
                    or not isinstance(encoded, bool):
                log.warning("onvif credentials: %s.%s must be {\"username\": string, \"password\": string, "
                            "\"base64encoded\": bool}; ignored", prop, device_id)
                continue
            if encoded and password is not None:
                try:
                    password = base64.b64decode(password, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError):
                    log.warning("onvif credentials: %s.%s.password is not base64 of UTF-8 text; "
                                "using no password", prop, device_id)
                    password = None
            found[_normalise(device_id)] = Credential(username, password)
    return found


def _from_reference_lists(props: Mapping[str, Any]) -> dict[str, Credential]:
    found: dict[str, Credential] = {}
    for prop, content in _listed_maps(props, CREDENTIAL_REF_LIST):
        for device_id, entry in content.items():
            user_ref = entry.get("username_ref") if isinstance(entry, dict) else None
            pass_ref = entry.get("password_ref") if isinstance(entry, dict) else None
            if not isinstance(user_ref, str) or not (pass_ref is None or isinstance(pass_ref, str)):
                log.warning("onvif credentials: %s.%s must be {\"username_ref\": string, "
                            "\"password_ref\": string}; ignored", prop, device_id)
                continue
            username = _text(props.get(user_ref))
            if not username:
                log.warning("onvif credentials: %s.%s: username property %r is missing, empty or not "
                            "UTF-8; ignored", prop, device_id, user_ref)
                continue
            password = _text(props.get(pass_ref)) if pass_ref is not None else None
            found[_normalise(device_id)] = Credential(username, password)
    return found


def _from_username_password(props: Mapping[str, Any]) -> dict[str, Credential]:
    found: dict[str, Credential] = {}
    for key, value in props.items():
        if not key.startswith(USERNAME_PREFIX) or len(key) == len(USERNAME_PREFIX):
            continue
        suffix = key[len(USERNAME_PREFIX):]
        username = _text(value)
        if username is None:
            continue
        password = _text(props.get(PASSWORD_PREFIX + suffix))
        # the key is in C_IDENTIFIER form: "_" stands for the uuid's "-"
        found[_normalise(suffix.replace("_", "-"))] = Credential(username, password)
    return found
