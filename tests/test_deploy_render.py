"""deploy/: every overlay renders, validates against the Kubernetes 1.33 schemas, and says what
it should (security, mounts per distribution, names that must agree, arguments the CLI accepts).

Rendering uses deploy/tools/render.py, so this runs without kustomize; where `kubectl` exists
its `kubectl kustomize` must produce the very same objects. Schemas come from the
`kubernetes-validate` package (offline, strict: unknown fields are errors).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from e2e.deploy_tools import load_tool

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if p.is_dir())
COMPONENTS = sorted(p.name for p in (DEPLOY / "components").iterdir() if p.is_dir())
HANDLER_COMPONENTS = ["debug-echo", "onvif", "opcua", "udev"]
K8S_VERSION = "1.33.0"
KUBECTL = shutil.which("kubectl")


render = load_tool("render")


def key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    out = {key(o): o for o in objects}
    assert len(out) == len(objects), "two objects with the same kind, namespace and name"
    return out


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def kubectl_kustomize(path: Path) -> list[dict[str, Any]]:
    assert KUBECTL
    out = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render.render(DEPLOY / "overlays" / request.param)


def combination(tmp_path: Path, components: list[str]) -> Path:
    """A kustomization of the base with some components, as a user would write it."""
    k = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # relative paths: kustomize refuses absolute ones
        "resources": [os.path.relpath(DEPLOY / "base", tmp_path)],
        "components": [os.path.relpath(DEPLOY / "components" / c, tmp_path) for c in components],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(k))
    return tmp_path


# --- rendering ----------------------------------------------------------------------------------


def test_overlays_exist() -> None:
    assert {"kubernetes", "k3s", "microk8s", "embedded"} <= set(OVERLAYS)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: only the Python renderer runs")
@pytest.mark.parametrize("path", ["base", *(f"overlays/{o}" for o in OVERLAYS)])
def test_python_renderer_equals_kubectl_kustomize(path: str) -> None:
    assert by_key(render.render(DEPLOY / path)) == by_key(kubectl_kustomize(DEPLOY / path))


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: only the Python renderer runs")
@pytest.mark.parametrize("component", [c for c in COMPONENTS if c not in ("k3s", "microk8s")])
def test_each_component_renders_like_kubectl(tmp_path: Path, component: str) -> None:
    path = combination(tmp_path, [component])
    assert by_key(render.render(path)) == by_key(kubectl_kustomize(path))


def test_every_object_validates_against_kubernetes_1_33(overlay) -> None:
    name, objects = overlay
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name}: {key(obj)}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("component", HANDLER_COMPONENTS)
def test_handler_components_validate(tmp_path: Path, component: str) -> None:
    objects = render.render(combination(tmp_path, [component]))
    (ds,) = [o for o in objects if o["kind"] == "DaemonSet" and "discovery" in o["metadata"]["name"]]
    kubernetes_validate.validate(ds, K8S_VERSION, strict=True)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == f"akri:{version}"


def test_examples_validate() -> None:
    for path in sorted((DEPLOY / "examples").glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_a_schema_violation_is_caught() -> None:
    """The validation above is not vacuous: a misspelt field in a rendered object fails."""
    objects = render.render(DEPLOY / "overlays" / "kubernetes")
    agent = find(objects, "DaemonSet", "akri-agent-daemonset")
    agent["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(agent, K8S_VERSION, strict=True)


def test_samples_validate_against_the_crd_schema() -> None:
    objects = render.render(DEPLOY / "base")
    crd = find(objects, "CustomResourceDefinition", "configurations.akri.sh")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    samples = sorted((DEPLOY / "samples").glob("*.yaml"))
    assert samples
    for path in samples:
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj.get("kind") == "Configuration":
                jsonschema.validate(obj, schema)


# --- what the manifests say ---------------------------------------------------------------------


def containers(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container of every workload."""
    out = []
    for obj in objects:
        if obj["kind"] in ("DaemonSet", "Deployment"):
            for c in obj["spec"]["template"]["spec"]["containers"]:
                out.append((obj, c))
    return out


def host_paths(workload: dict[str, Any]) -> dict[str, str]:
    """container mount path -> host path, for the workload's single container."""
    spec = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    (container,) = spec["containers"]
    return {
        m["mountPath"]: volumes[m["name"]]["hostPath"]["path"]
        for m in container.get("volumeMounts") or []
        if "hostPath" in volumes[m["name"]]
    }


def test_every_container_is_locked_down_and_bounded(overlay) -> None:
    _, objects = overlay
    for workload, c in containers(objects):
        where = f"{workload['metadata']['name']}/{c['name']}"
        sc = c["securityContext"]
        assert not sc.get("privileged"), where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
        assert sc["readOnlyRootFilesystem"] is True, where
        pod_sc = workload["spec"]["template"]["spec"].get("securityContext") or {}
        assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault", where
        res = c["resources"]
        for kind in ("memory", "cpu"):
            assert kind in res["requests"] and kind in res["limits"], where
        assert _mib(res["requests"]["memory"]) <= _mib(res["limits"]["memory"]), where


def _mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * factor
    raise AssertionError(f"memory quantity {quantity!r} not in Ki/Mi/Gi")


def test_only_the_node_side_runs_as_root(overlay) -> None:
    """uid 0 only where host sockets are written (agent, handlers); controller and webhook not."""
    _, objects = overlay
    for workload, c in containers(objects):
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        pod_sc = workload["spec"]["template"]["spec"].get("securityContext") or {}
        uid = c["securityContext"].get("runAsUser", pod_sc.get("runAsUser"))
        if component in ("agent", "discovery-handler"):
            assert uid == 0, workload["metadata"]["name"]
        else:
            assert uid != 0 and pod_sc.get("runAsNonRoot") is True, workload["metadata"]["name"]


KUBELET_PATHS = {
    "kubernetes": ("/var/lib/kubelet/device-plugins", "/var/lib/kubelet/pod-resources"),
    "embedded": ("/var/lib/kubelet/device-plugins", "/var/lib/kubelet/pod-resources"),
    "k3s": ("/var/lib/kubelet/device-plugins", "/var/lib/kubelet/pod-resources"),
    "microk8s": (
        "/var/lib/kubelet/device-plugins",
        "/var/snap/microk8s/common/var/lib/kubelet/pod-resources",
    ),
}


def test_agent_mounts_the_distributions_kubelet_directories(overlay) -> None:
    name, objects = overlay
    agent = find(objects, "DaemonSet", "akri-agent-daemonset")
    device_plugins, pod_resources = KUBELET_PATHS[name]
    assert host_paths(agent) == {
        "/var/lib/akri": "/var/lib/akri",
        "/var/lib/kubelet/device-plugins": device_plugins,
        "/var/lib/kubelet/pod-resources": pod_resources,
        "/run/udev": "/run/udev",
    }
    (c,) = agent["spec"]["template"]["spec"]["containers"]
    read_only = {m["mountPath"] for m in c["volumeMounts"] if m.get("readOnly")}
    assert read_only == {"/var/lib/kubelet/pod-resources", "/run/udev"}


def test_handlers_standalone_or_embedded_never_both(overlay) -> None:
    name, objects = overlay
    agent = find(objects, "DaemonSet", "akri-agent-daemonset")
    (c,) = agent["spec"]["template"]["spec"]["containers"]
    args = c["args"]
    embedded = args[args.index("--embedded") + 1 :] if "--embedded" in args else []
    standalone = {
        o["spec"]["template"]["spec"]["containers"][0]["args"][1]
        for o in objects
        if o["kind"] == "DaemonSet" and o["metadata"]["name"].endswith("-discovery-daemonset")
    }
    assert not set(embedded) & standalone
    assert set(embedded) | standalone == {"udev", "onvif"}
    # whoever runs udev or ONVIF discovery needs the host's network namespace
    for o in objects:
        if o["kind"] != "DaemonSet":
            continue
        runs = set(o["spec"]["template"]["spec"]["containers"][0]["args"][1:]) & {"udev", "onvif"}
        assert bool(runs) == bool(o["spec"]["template"]["spec"].get("hostNetwork")), o["metadata"]["name"]
    if name == "embedded":
        assert embedded == ["udev", "onvif"] and not standalone


def test_container_arguments_parse_with_the_akri_cli(overlay) -> None:
    from akri.cli import build_parser

    _, objects = overlay
    parser = build_parser()
    for workload, c in containers(objects):
        args = parser.parse_args(c["args"])
        assert callable(args.func), workload["metadata"]["name"]


@pytest.mark.parametrize("component", HANDLER_COMPONENTS)
def test_handler_arguments_parse_with_the_akri_cli(tmp_path: Path, component: str) -> None:
    from akri.cli import build_parser
    from akri.discovery.handlers import BUILTIN

    objects = render.render(combination(tmp_path, [component]))
    (ds,) = [o for o in objects if o["metadata"]["name"] == f"akri-{component}-discovery-daemonset"]
    (c,) = ds["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(c["args"])
    assert args.command == "handler" and args.name in BUILTIN


def test_names_that_must_agree_do(overlay) -> None:
    _, objects = overlay
    # workload selectors select their own Pods
    for obj in objects:
        if obj["kind"] in ("DaemonSet", "Deployment"):
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()
            assert labels["app.kubernetes.io/part-of"] == "akri"
    # every service account a Pod uses exists, and every binding's role exists
    sas = {
        (o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "ServiceAccount"
    }
    for obj in objects:
        if obj["kind"] in ("DaemonSet", "Deployment"):
            sa = obj["spec"]["template"]["spec"].get("serviceAccountName")
            if sa:
                assert (obj["metadata"]["namespace"], sa) in sas
            else:
                assert obj["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            ref = obj["roleRef"]
            find(objects, ref["kind"], ref["name"])
            for s in obj["subjects"]:
                assert (s["namespace"], s["name"]) in sas
    # the webhook: Service, Secret, configuration, its flags and its RBAC name the same things
    webhook = find(objects, "Deployment", "akri-webhook-configuration")
    (c,) = webhook["spec"]["template"]["spec"]["containers"]
    from akri.cli import build_parser

    flags = build_parser().parse_args(c["args"])
    service = find(objects, "Service", flags.service_name)
    assert service["spec"]["selector"].items() <= webhook["spec"]["template"]["metadata"]["labels"].items()
    vwc = find(objects, "ValidatingWebhookConfiguration", flags.webhook_config_name)
    (hook,) = vwc["webhooks"]
    assert hook["clientConfig"]["service"] == {
        "name": service["metadata"]["name"],
        "namespace": service["metadata"]["namespace"],
        "path": "/validate",
        "port": service["spec"]["ports"][0]["port"],
    }
    assert service["spec"]["ports"][0]["targetPort"] in ("https", flags.port)
    role = find(objects, "Role", "akri-webhook-certificate")
    assert [flags.secret_name] in [r.get("resourceNames") for r in role["rules"]]
    ca_role = find(objects, "ClusterRole", "akri-webhook-ca-bundle")
    assert ca_role["rules"][0]["resourceNames"] == [flags.webhook_config_name]
    # the controller's Lease is the one its Role names
    controller = find(objects, "Deployment", "akri-controller-deployment")
    (c,) = controller["spec"]["template"]["spec"]["containers"]
    flags = build_parser().parse_args(c["args"])
    lease_role = find(objects, "Role", "akri-controller-leader-election")
    assert [flags.lease_name] in [r.get("resourceNames") for r in lease_role["rules"]]
    assert controller["spec"]["replicas"] == 2
    # the admission rules name the agent's actual service account
    agent = find(objects, "DaemonSet", "akri-agent-daemonset")
    sa = agent["spec"]["template"]["spec"]["serviceAccountName"]
    user = f"system:serviceaccount:{agent['metadata']['namespace']}:{sa}"
    for name in (
        "akri-agent-configuration-finalizer-only",
        "akri-agent-instance-own-node",
        "akri-agent-instance-follows-configuration",
    ):
        policy = find(objects, "ValidatingAdmissionPolicy", name)
        assert f"'{user}'" in policy["spec"]["matchConditions"][0]["expression"]
    assert f"'{user}'" in hook["matchConditions"][0]["expression"]


def test_image_is_the_packages_version(overlay) -> None:
    _, objects = overlay
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    images = {c["image"] for _, c in containers(objects)}
    assert images == {f"akri:{version}"}


def test_agent_environment_is_what_the_agent_reads(overlay) -> None:
    from akri.agent.core import DIRECTORY_ENV, NODE_NAME_ENV

    _, objects = overlay
    agent = find(objects, "DaemonSet", "akri-agent-daemonset")
    (c,) = agent["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in c["env"]}
    assert env[NODE_NAME_ENV]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env[DIRECTORY_ENV]["value"] == "/var/lib/akri"
    assert env["METRICS_PORT"]["value"] == str(c["ports"][0]["containerPort"])


# --- the renderer itself --------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A base with a Deployment, a ConfigMap and a ClusterRole, and an overlay using every
    feature the renderer supports."""
    write(tmp_path / "base" / "kustomization.yaml", "resources: [app.yaml]\n")
    write(
        tmp_path / "base" / "app.yaml",
        """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, labels: {a: b}}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
        - name: main
          image: registry.local:5000/team/app:1.0
          args: [serve]
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
        - name: side
          image: busybox
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {k: v}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: []
""",
    )
    write(
        tmp_path / "comp" / "kustomization.yaml",
        """
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [extra.yaml]
patches:
  - target: {kind: Deployment, name: ap.*}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/args
        value: [serve, --fast]
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {name: C, value: "3"}
""",
    )
    write(
        tmp_path / "comp" / "extra.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: extra}\nspec: {ports: [{port: 80}]}\n",
    )
    write(
        tmp_path / "overlay" / "kustomization.yaml",
        """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: prod
resources: [../base]
components: [../comp]
labels:
  - pairs: {team: edge}
    includeTemplates: true
images:
  - {name: registry.local:5000/team/app, newTag: "2.0"}
  - {name: busybox, newName: mirror/busybox, digest: "sha256:abc"}
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: app}
      spec:
        template:
          spec:
            containers:
              - name: main
                env:
                  - {name: A, value: "10"}
                  - {name: B, $patch: delete}
              - name: side
                resources: {limits: {memory: 8Mi}}
""",
    )
    return tmp_path / "overlay"


def test_renderer_features(toy: Path) -> None:
    objects = by_key(render.render(toy))
    app = objects[("apps/v1", "Deployment", "prod", "app")]
    main, side = app["spec"]["template"]["spec"]["containers"]
    assert main["args"] == ["serve", "--fast"]
    assert main["env"] == [{"name": "A", "value": "10"}, {"name": "C", "value": "3"}]
    assert main["image"] == "registry.local:5000/team/app:2.0"
    assert side["image"] == "mirror/busybox@sha256:abc"
    assert side["resources"] == {"limits": {"memory": "8Mi"}}
    assert app["metadata"]["labels"] == {"a": "b", "team": "edge"}
    assert app["spec"]["template"]["metadata"]["labels"] == {"app": "x", "team": "edge"}
    assert app["spec"]["selector"] == {"matchLabels": {"app": "x"}}  # not includeSelectors
    assert ("v1", "Service", "prod", "extra") in objects  # the component's resource
    assert ("rbac.authorization.k8s.io/v1", "ClusterRole", "", "reader") in objects  # not namespaced
    assert objects[("v1", "ConfigMap", "prod", "settings")]["metadata"]["labels"] == {"team": "edge"}


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_renderer_features_agree_with_kubectl(toy: Path) -> None:
    assert by_key(render.render(toy)) == by_key(kubectl_kustomize(toy))


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ("resources: [app.yaml]\nreplicas: [{name: app, count: 2}]\n", "unsupported field"),
        ("resources: [missing.yaml]\n", "does not exist"),
        ("resources: [/etc/hosts]\n", "absolute"),
        ("resources: [../outside.yaml]\n", "not in or below"),
        (
            "resources: [app.yaml]\npatches:\n  - target: {kind: Deployment, name: nope}\n"
            "    patch: '[{op: remove, path: /spec}]'\n",
            "matches no object",
        ),
        (
            "resources: [app.yaml]\npatches:\n  - target: {kind: Deployment}\n"
            "    patch: '[{op: test, path: /metadata/name, value: other}]'\n",
            "test failed",
        ),
        (
            "resources: [app.yaml]\npatches:\n  - target: {kind: Deployment}\n"
            "    patch: '[{op: replace, path: /spec/nothing, value: 1}]'\n",
            "does not exist",
        ),
        ("resources: [app.yaml]\nlabels: [{pairs: {a: b}, includeSelectors: true}]\n", "includeSelectors"),
    ],
)
def test_renderer_refuses_what_it_cannot_do(tmp_path: Path, kustomization: str, message: str) -> None:
    write(tmp_path / "outside.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: o}\n")
    write(
        tmp_path / "k" / "app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec: {}\n",
    )
    write(tmp_path / "k" / "kustomization.yaml", kustomization)
    with pytest.raises(render.RenderError, match=message):
        render.render(tmp_path / "k")


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2, 3]}, "k~/": 0}
    out = render.json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/1", "value": 9},
            {"op": "remove", "path": "/a/b/0"},
            {"op": "move", "from": "/k~0~1", "path": "/moved"},
            {"op": "copy", "from": "/a", "path": "/c"},
            {"op": "replace", "path": "/a/b/2", "value": 7},
            {"op": "test", "path": "/c/b", "value": [9, 2, 3]},
        ],
    )
    assert out == {"a": {"b": [9, 2, 7]}, "moved": 0, "c": {"b": [9, 2, 3]}}
    assert doc == {"a": {"b": [1, 2, 3]}, "k~/": 0}  # the input is not changed
    with pytest.raises(render.RenderError, match="out of range"):
        render.json_patch(doc, [{"op": "add", "path": "/a/b/7", "value": 0}])


#: workload -> the baseline figures (bench/results/baseline.json) of the process it runs
MEASURED = {
    "akri-agent-daemonset": ("rss_mib/agent_debug_echo_idle", "rss_mib/agent_n_instances"),
    "akri-controller-deployment": ("rss_mib/controller_idle", "rss_mib/controller_idle"),
    "akri-webhook-configuration": ("rss_mib/webhook_idle", "rss_mib/webhook_idle"),
    "akri-debug-echo-discovery-daemonset": (
        "rss_mib/handler_debugEcho/idle",
        "rss_mib/handler_debugEcho/serving",
    ),
    "akri-udev-discovery-daemonset": ("rss_mib/handler_udev/idle", "rss_mib/handler_udev/serving"),
    "akri-onvif-discovery-daemonset": ("rss_mib/handler_onvif/idle", "rss_mib/handler_onvif/serving"),
    "akri-opcua-discovery-daemonset": ("rss_mib/handler_opcua/idle", "rss_mib/handler_opcua/serving"),
}


def test_memory_requests_and_limits_follow_the_measured_footprint(tmp_path: Path) -> None:
    """Requests cover the idle RSS; limits keep at least 25% over the busiest measured RSS
    (a limit below real use means OOM kills in the field)."""
    import json

    metrics = json.loads((ROOT / "bench" / "results" / "baseline.json").read_text())["metrics"]
    objects = render.render(combination(tmp_path, HANDLER_COMPONENTS))
    seen = set()
    for workload, c in containers(objects):
        idle, busiest = MEASURED[workload["metadata"]["name"]]
        res = c["resources"]
        assert _mib(res["requests"]["memory"]) >= 0.9 * metrics[idle], workload["metadata"]["name"]
        assert _mib(res["limits"]["memory"]) >= 1.25 * metrics[busiest], workload["metadata"]["name"]
        seen.add(workload["metadata"]["name"])
    assert seen == set(MEASURED)
    embedded = find(render.render(DEPLOY / "overlays" / "embedded"), "DaemonSet", "akri-agent-daemonset")
    limit = _mib(embedded["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])
    assert limit >= 1.25 * metrics["rss_mib/agent_embedded_udev_onvif_idle"]
