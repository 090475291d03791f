"""`akri validate` end to end, as a user runs it: output lines and exit codes (subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from akri.cli import main
from akri.model.manifests import ManifestError, load_documents

UPSTREAM = Path(__file__).parent / "fixtures" / "upstream"
SAMPLES = [
    "akri-debug-echo-foo-configuration.yaml",
    "akri-debug-echo-fee-job-configuration.yaml",
    "akri-onvif-video-configuration.yaml",
    "akri-opcua-configuration.yaml",
    "akri-udev-video-configuration.yaml",
    "config-a.yaml",
    "config-a.json",
    "config-b.yaml",
    "webhookValidConfiguration.yaml",
]


def akri_validate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `akri validate` in a fresh process (tests using it are marked slow)."""
    return subprocess.run(
        [sys.executable, "-m", "akri", "validate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_all_samples_valid():
    result = akri_validate("-f", *(str(UPSTREAM / name) for name in SAMPLES))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "configuration/akri-debug-echo-foo: valid",
        "configuration/akri-debug-echo-fee: valid",
        "configuration/akri-onvif-video: valid",
        "configuration/akri-opcua: valid",
        "configuration/akri-udev-video: valid",
        "configuration/config-a: valid",
        "configuration/config-a: valid",
        "configuration/config-b: valid",
        "configuration/broker: valid",
    ]
    assert result.stderr == ""


@pytest.mark.slow
def test_invalid_webhook_configuration():
    result = akri_validate("-f", str(UPSTREAM / "webhookInvalidConfiguration.yaml"))
    assert result.returncode == 1
    assert result.stdout == (
        "configuration/broker: invalid: spec.brokerSpec.brokerPodSpec.xUnknownSyntheticField: unknown field\n"
    )


@pytest.mark.slow
def test_broken_configurations_one_line_each_naming_the_field():
    path = UPSTREAM / "broken-configurations.yaml"
    expected = [
        (d["metadata"]["name"], d["metadata"]["annotations"]["akri.test/expected-error"])
        for d in yaml.safe_load_all(path.read_text())
    ]
    result = akri_validate("-f", str(path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == len(expected)
    for line, (name, field) in zip(lines, expected, strict=True):
        assert line.startswith(f"configuration/{name}: invalid: {field}: "), line


@pytest.mark.slow
def test_mixed_files_and_other_kinds():
    result = akri_validate(
        "-f",
        str(UPSTREAM / "config-b.yaml"),
        str(UPSTREAM / "akri-instance-usb-camera.yaml"),
        "-f",
        str(UPSTREAM / "webhookInvalidConfiguration.yaml"),
    )
    assert result.returncode == 1
    assert result.stdout.splitlines()[:2] == [
        "configuration/config-b: valid",
        "instance/usb-dev-video0-ffffff: skipped (not an akri.sh Configuration)",
    ]
    assert result.stdout.splitlines()[2].startswith("configuration/broker: invalid: ")


@pytest.mark.slow
def test_stdin_multi_document_and_lists():
    text = "\n".join(
        [
            (UPSTREAM / "config-b.yaml").read_text(),
            "---",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}",
            "---",
            "# an empty document is ignored",
            "---",
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: akri.sh/v0\n  kind: Configuration\n"
            "  metadata: {name: listed, creationTimestamp: 2024-01-01T00:00:00Z}\n"
            "  spec: {discoveryHandler: {name: custom}}\n",
        ]
    )
    result = akri_validate("-f", "-", stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "configuration/config-b: valid",
        "configmap/cm: skipped (not an akri.sh Configuration)",
        "configuration/listed: valid",
    ]


@pytest.mark.slow
def test_configuration_of_another_group_is_skipped():
    text = "apiVersion: operator.example.com/v1\nkind: Configuration\nmetadata: {name: other}\nspec: {x: 1}\n"
    result = akri_validate("-f", "-", stdin=text)
    assert (result.returncode, result.stdout) == (
        0,
        "configuration/other: skipped (not an akri.sh Configuration)\n",
    )


@pytest.mark.slow
def test_not_an_object_and_unnamed():
    result = akri_validate(
        "-f",
        "-",
        stdin="- just\n- a list\n---\nkind: Configuration\napiVersion: akri.sh/v0\n"
        "spec: {discoveryHandler: {name: x}}\n",
    )
    assert result.returncode == 1
    first, second = result.stdout.splitlines()
    assert first == "<stdin>:1: invalid: not a Kubernetes object (a YAML mapping)"
    assert second == "configuration/<unnamed> (<stdin>:4): invalid: metadata.name: required"


def test_yaml_syntax_error_exit_2_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: akri.sh/v0\nkind: Configuration\nmetadata:\n  name: [unclosed\n")
    result = akri_validate("-f", str(bad), str(UPSTREAM / "config-b.yaml"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"akri validate: {bad}:5: YAML syntax error")
    assert result.stdout == "configuration/config-b: valid\n"  # later files are still checked


@pytest.mark.slow
def test_duplicate_key_is_a_syntax_error(tmp_path):
    bad = tmp_path / "dup.yaml"
    bad.write_text("apiVersion: akri.sh/v0\nkind: Configuration\nkind: Configuration\n")
    result = akri_validate("-f", str(bad))
    assert result.returncode == 2
    assert f"{bad}:3: YAML syntax error: found duplicate key 'kind'" in result.stderr


def test_unreadable_file_exit_2(tmp_path):
    result = akri_validate(
        "-f", str(tmp_path / "missing.yaml"), str(UPSTREAM / "webhookInvalidConfiguration.yaml")
    )
    assert result.returncode == 2
    assert "missing.yaml: cannot read: No such file or directory" in result.stderr
    assert "invalid" in result.stdout
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    result = akri_validate("-f", str(binary))
    assert result.returncode == 2 and "not UTF-8" in result.stderr


@pytest.mark.slow
def test_file_argument_required():
    result = akri_validate()
    assert result.returncode == 2
    assert "-f" in result.stderr


# In-process runs of the same command (fast tier): exit codes and output through akri.cli.main.


def test_in_process_exit_codes(capsys, tmp_path):
    assert (
        main(
            [
                "validate",
                "-f",
                str(UPSTREAM / "config-a.yaml"),
                str(UPSTREAM / "akri-opcua-configuration.yaml"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == "configuration/config-a: valid\nconfiguration/akri-opcua: valid\n"
    assert main(["validate", "-f", str(UPSTREAM / "webhookInvalidConfiguration.yaml")]) == 1
    assert "xUnknownSyntheticField: unknown field" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    assert main(["validate", "-f", str(bad), str(UPSTREAM / "webhookInvalidConfiguration.yaml")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"akri validate: {bad}:2: YAML syntax error")
    assert captured.out.startswith("configuration/broker: invalid:")


def test_in_process_timestamps_stay_strings(capsys, tmp_path):
    """Unquoted timestamps are strings (as kubectl sends them), not YAML dates."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "apiVersion: akri.sh/v0\nkind: Configuration\nmetadata:\n  name: c\n"
        "  annotations: {built: 2024-01-01}\nspec: {discoveryHandler: {name: custom}}\n"
    )
    assert main(["validate", "-f", str(path)]) == 0
    assert capsys.readouterr().out == "configuration/c: valid\n"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}'\"#&*!|>%@ \n\t,?0.")), max_size=60))
def test_manifest_reader_fails_only_with_manifest_error(text):
    try:
        docs = load_documents(text, "fuzz.yaml")
    except ManifestError as exc:
        assert str(exc).startswith("fuzz.yaml")
    else:
        assert all(d.obj is not None and d.line >= 1 for d in docs)


@pytest.mark.parametrize(
    "text", ["a: !!int abc", "a: !!bool maybe", "a: !!timestamp nope", "a: !!python/name:os.system"]
)
def test_bad_explicit_tags_are_manifest_errors(text):
    with pytest.raises(ManifestError, match=r"f\.yaml:1: YAML"):
        load_documents(text, "f.yaml")


def test_self_referencing_yaml_is_invalid_not_a_crash(capsys, tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(
        "apiVersion: akri.sh/v0\nkind: Configuration\nmetadata: {name: loop}\n"
        "spec: {discoveryHandler: {name: h},\n"
        "       brokerSpec: {brokerPodSpec: &p {containers: [{name: c, args: *p}]}}}\n"
    )
    assert main(["validate", "-f", str(path)]) == 1
    assert capsys.readouterr().out == "configuration/loop: invalid: object is nested too deeply\n"
