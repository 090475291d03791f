"""Credential store (spec §5.4): the four forms, their precedence, lookup, bytes values, and
upstream's credential_store.rs vectors."""

from __future__ import annotations

import json

from akri.discovery.handlers.onvif.credentials import Credential, CredentialStore

U1 = "5f5a69c2-e0ae-504f-829b-00fcdab169cc"
U2 = "7a21dc67-8438-5588-1547-4d1349048438"
U3 = "6a67158b-42b1-400b-8afe-1bec9a5d7909"


def b(value: object) -> bytes:
    return (value if isinstance(value, str) else json.dumps(value)).encode()


def store(props: dict[str, bytes | None]) -> dict[str, Credential]:
    return CredentialStore.from_properties(props).as_dict()


def test_empty():
    assert store({}) == {}
    assert CredentialStore.from_properties({}).get(U1) is None


def test_username_password_pairs_in_c_identifier_form():
    key = U1.replace("-", "_")
    props = {f"username_{key}": b"username_5f", f"password_{key}": b"password_5f"}
    assert store(props) == {U1: Credential("username_5f", "password_5f")}


def test_username_without_password():
    assert store({"username_abc_def": b"u"}) == {"abc-def": Credential("u", None)}


def test_non_utf8_username_is_ignored_and_non_utf8_password_is_none():
    assert store({"username_deviceid_1": bytes([200, 200, 200]), "password_deviceid_1": b"p"}) == {}
    assert store({"username_deviceid_1": b"username_1", "password_deviceid_1": bytes([200, 200, 200])}) == \
        {"deviceid-1": Credential("username_1", None)}


def test_default_credential_and_lookup_fallback():
    creds = CredentialStore.from_properties({"username_default": b"default_username",
                                             "password_default": b"default_password",
                                             f"username_{U1.replace('-', '_')}": b"own"})
    assert creds.get(U1) == Credential("own", None)
    assert creds.get(U2) == Credential("default_username", "default_password")
    assert creds.get(U1.upper()) == Credential("own", None)  # uuids compare case-insensitively


def test_credential_list_upstream_vector():
    props = {
        "device_credential_list": b(["secret_list1", "secret_list2"]),
        "secret_list1": b({U1: {"username": "uname_1", "password": "password_1"},
                           U3: {"username": "uname_3", "password": "YWRtaW4=", "base64encoded": True}}),
        "secret_list2": b({U2: {"username": "uname_2", "password": "password_2"}}),
    }
    assert store(props) == {U1: Credential("uname_1", "password_1"), U3: Credential("uname_3", "admin"),
                            U2: Credential("uname_2", "password_2")}


def test_credential_ref_list_upstream_vector():
    props = {
        "device_credential_ref_list": b(["secret_ref_list1", "secret_ref_list2"]),
        "secret_ref_list1": b({U1: {"username_ref": "device_1_username",
                                    "password_ref": "device_1_password"}}),
        "secret_ref_list2": b({U2: {"username_ref": "device_2_username",
                                    "password_ref": "device_2_password"}}),
        "device_1_username": b"user_foo", "device_1_password": b"password_foo",
        "device_2_username": b"user_bar", "device_2_password": b"password_bar",
    }
    assert store(props) == {U1: Credential("user_foo", "password_foo"),
                            U2: Credential("user_bar", "password_bar")}


def test_ref_list_entries_without_usable_username_are_dropped():
    props = {
        "device_credential_ref_list": b(["refs"]),
        "refs": b({"a": {"username_ref": "empty"}, "b": {"username_ref": "missing"},
                   "c": {"username_ref": "u", "password_ref": "missing"}}),
        "empty": b"", "u": b"user",
    }
    assert store(props) == {"c": Credential("user", None)}


def test_precedence_later_forms_overwrite_earlier():
    props = {
        "device_credential_list": b(["list"]),
        "list": b({U1: {"username": "from_list", "password": "1"}, U2: {"username": "only_list"}}),
        "device_credential_ref_list": b(["refs"]),
        "refs": b({U1: {"username_ref": "ref_user", "password_ref": "ref_pass"}}),
        "ref_user": b"from_ref", "ref_pass": b"2",
        f"username_{U1.replace('-', '_')}": b"from_pair", f"password_{U1.replace('-', '_')}": b"3",
        "username_default": b"dflt",
    }
    result = store(props)
    assert result[U1] == Credential("from_pair", "3")        # step 3 beats steps 1 and 2
    assert result[U2] == Credential("only_list", None)
    assert result["default"] == Credential("dflt", None)     # step 4
    del props[f"username_{U1.replace('-', '_')}"]
    assert store(props)[U1] == Credential("from_ref", "2")   # step 2 beats step 1


def test_malformed_entries_are_skipped_not_fatal(caplog):
    props = {
        "device_credential_list": b(["good", "not_json", "not_object", "missing"]),
        "good": b({"a": {"username": "ua"}, "b": {"password": "no user"}, "c": {"username": "uc",
                   "password": "!!!", "base64encoded": True}}),
        "not_json": b"{nope", "not_object": b("[1]"),
        "device_credential_ref_list": b"not a list",
    }
    assert store(props) == {"a": Credential("ua", None), "c": Credential("uc", None)}
    text = caplog.text
    for name in ("not_json", "not_object", "missing", "device_credential_ref_list", "good.b", "good.c"):
        assert name in text


def test_none_values_and_str_values():
    assert store({"username_default": None}) == {}
    assert store({"username_default": "str-user", "password_default": "pw"}) == \
        {"default": Credential("str-user", "pw")}


def test_password_never_in_repr():
    assert "secret" not in repr(Credential("u", "secret"))
