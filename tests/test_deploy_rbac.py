"""The RBAC in deploy/ grants each component exactly the API calls its code makes.

Two independent derivations of "what the code calls":
* statically, from the source: every `Kube` call and every `Informer` on a resource descriptor
  (`akri.kube.resources.Resource`), in the modules each component runs, mapped to RBAC verbs;
* dynamically, for the agent: the real `AgentCore` runs against the API server double with the
  rendered RBAC (and the agent's ValidatingAdmissionPolicies) enforced in front of it, through
  a Configuration whose discovery properties read a Secret and a ConfigMap, Instances created,
  a slot claimed and released, devices going away and the Configuration deleted. Nothing may be
  refused, and every verb granted must have been needed.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import functools
import importlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from aiohttp import web
from e2e.deploy_tools import load_tool
from e2e.procs import until as _until

ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / "deploy" / "overlays" / "kubernetes"
SECRET_READER = ROOT / "deploy" / "examples" / "agent-reads-discovery-secret.yaml"


render = load_tool("render")
rbac = load_tool("rbac")
admission = load_tool("admission")


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render.render(OVERLAY)


# --- static derivation ------------------------------------------------------------------------

#: method of `Kube` (akri/kube/api.py) -> RBAC verbs it can use
METHOD_VERBS: dict[str, set[str]] = {
    "get": {"get"},
    "get_or_none": {"get"},
    "list": {"list"},
    "watch": {"watch"},
    "create": {"create"},
    "replace": {"update"},
    "merge_patch": {"patch"},
    "patch": {"patch"},
    "apply": {"patch"},
    "delete": {"delete"},
    "deletecollection": {"deletecollection"},
    # read, then PUT with the resourceVersion read; re-read on 409
    "add_finalizer": {"get", "update"},
    "remove_finalizer": {"get", "update"},
    "update_with_retry": {"get", "update"},
}

COMPONENT_MODULES = {
    "akri-agent": ["akri.agent", "akri.kube.slot_store"],
    "akri-controller": ["akri.controller"],
    "akri-webhook": ["akri.webhook"],
}


def modules_of(names: list[str]) -> Iterator[ModuleType]:
    for name in names:
        module = importlib.import_module(name)
        if hasattr(module, "__path__"):
            for path in sorted(Path(module.__path__[0]).rglob("*.py")):
                rel = path.relative_to(ROOT).with_suffix("")
                yield importlib.import_module(".".join(rel.parts).removesuffix(".__init__"))
        else:
            yield module


def _resource_of(module: ModuleType, node: ast.expr) -> tuple[str, str] | None:
    """(group, plural) when `node` names a resource descriptor (akri.kube.resources.Resource) in `module`."""
    from akri.kube.resources import Resource

    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        value = getattr(getattr(module, node.value.id, None), node.attr, None)
    else:
        return None
    return (value.group, value.plural) if isinstance(value, Resource) else None


def _wrappers(trees: list[ast.Module]) -> dict[str, set[str]]:
    """Functions that pass their resource parameter on to API calls (`_create(self, res, obj)`
    calling `self.kube.create(res, obj)`): name -> verbs, followed through wrappers of wrappers."""
    table = {name: set(verbs) for name, verbs in METHOD_VERBS.items()}
    wrappers: dict[str, set[str]] = {}
    changed = True
    while changed:
        changed = False
        for tree in trees:
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                params = [a.arg for a in fn.args.args if a.arg not in ("self", "cls")]
                if not params:
                    continue
                for node in ast.walk(fn):
                    if (
                        isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Attribute | ast.Name)
                        and node.args
                        and isinstance(node.args[0], ast.Name)
                        and node.args[0].id == params[0]
                    ):
                        callee = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                        verbs = table.get(callee) or wrappers.get(callee)
                        if verbs and callee != fn.name and not verbs <= wrappers.get(fn.name, set()):
                            wrappers.setdefault(fn.name, set()).update(verbs)
                            changed = True
    return {k: v for k, v in wrappers.items() if k not in METHOD_VERBS}


def api_calls(component: str) -> dict[tuple[str, str], set[str]]:
    """(group, resource) -> verbs, from every call on a resource class in the component's code
    (directly, or through a helper that passes the class on)."""
    modules = list(modules_of(COMPONENT_MODULES[component]))
    trees = {m.__name__: ast.parse(Path(m.__file__ or "").read_text()) for m in modules}
    wrappers = _wrappers(list(trees.values()))
    calls: dict[tuple[str, str], set[str]] = {}
    for module in modules:
        tree = trees[module.__name__]
        # update_with_retry deletes when its mutate function returns the DELETE sentinel
        deletes_by_sentinel = any(isinstance(n, ast.Name) and n.id == "DELETE" for n in ast.walk(tree))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            if name == "Informer" and len(node.args) >= 2:
                res, verbs = _resource_of(module, node.args[1]), {"list", "watch"}
            elif isinstance(func, ast.Attribute) and name in METHOD_VERBS:
                res, verbs = _resource_of(module, node.args[0]), set(METHOD_VERBS[name])
                if name == "update_with_retry" and deletes_by_sentinel:
                    verbs.add("delete")
            elif name in wrappers:
                res, verbs = _resource_of(module, node.args[0]), set(wrappers[name])
            else:
                continue
            if res is not None:
                calls.setdefault(res, set()).update(verbs)
    return calls


def granted(manifests: list[dict[str, Any]], sa: str) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for g in rbac.Authorizer(manifests).grants("akri", sa):
        for group, resource, verb in g.permissions():
            out.setdefault((group, resource), set()).add(verb)
    return out


#: permissions no Python call shows: the API server asks for them on the controller's behalf
#: (ownerReferences with blockOwnerDeletion, under OwnerReferencesPermissionEnforcement)
IMPLIED = {
    "akri-controller": {
        ("akri.sh", "instances/finalizers"): {"update"},
        ("akri.sh", "configurations/finalizers"): {"update"},
    },
}


@pytest.mark.parametrize("component", sorted(COMPONENT_MODULES))
def test_granted_permissions_equal_the_calls_in_the_code(manifests, component: str) -> None:
    calls = api_calls(component)
    assert calls, "found no API calls: the derivation is broken"
    if component == "akri-agent":
        # Secrets and ConfigMaps are read only where a Configuration names them: granted per
        # namespace and name by the operator (deploy/examples), never cluster-wide
        for res in (("", "secrets"), ("", "configmaps")):
            assert calls.pop(res) == {"get"}
    expected = calls | IMPLIED.get(component, {})
    assert granted(manifests, component) == expected


def test_the_agent_may_not_touch_pods_nodes_secrets_or_configuration_specs(manifests) -> None:
    authz = rbac.Authorizer(manifests)
    refused = [
        rbac.ResourceRequest("create", "", "pods", "default", ""),
        rbac.ResourceRequest("list", "", "pods", "", ""),
        rbac.ResourceRequest("get", "", "secrets", "default", "onvif-camera-credentials"),
        rbac.ResourceRequest("list", "", "secrets", "", ""),
        rbac.ResourceRequest("patch", "akri.sh", "configurations", "default", "c"),
        rbac.ResourceRequest("delete", "akri.sh", "configurations", "default", "c"),
        rbac.ResourceRequest("create", "akri.sh", "configurations", "default", ""),
        rbac.ResourceRequest("update", "", "nodes", "", "node-a"),
    ]
    for req in refused:
        assert not authz.allowed("akri", "akri-agent", req), req
    # the operator's Role opens exactly the named objects in one namespace
    with_role = rbac.Authorizer(manifests + list(yaml.safe_load_all(SECRET_READER.read_text())))
    assert with_role.allowed(
        "akri",
        "akri-agent",
        rbac.ResourceRequest("get", "", "secrets", "default", "onvif-camera-credentials"),
    )
    for req in (
        rbac.ResourceRequest("get", "", "secrets", "default", "another-secret"),
        rbac.ResourceRequest("get", "", "secrets", "kube-system", "onvif-camera-credentials"),
        rbac.ResourceRequest("list", "", "secrets", "default", ""),
        rbac.ResourceRequest("update", "", "secrets", "default", "onvif-camera-credentials"),
    ):
        assert not with_role.allowed("akri", "akri-agent", req), req


def test_http_requests_map_to_rbac_attributes() -> None:
    r = rbac.request_from_http
    assert r(
        "GET", "/apis/akri.sh/v0/configurations", "watch=true&resourceVersion=5"
    ) == rbac.ResourceRequest("watch", "akri.sh", "configurations", "", "")
    assert r("GET", "/apis/akri.sh/v0/namespaces/default/instances") == rbac.ResourceRequest(
        "list", "akri.sh", "instances", "default", ""
    )
    assert r("PUT", "/apis/akri.sh/v0/namespaces/ns/instances/i") == rbac.ResourceRequest(
        "update", "akri.sh", "instances", "ns", "i"
    )
    assert r("PATCH", "/api/v1/namespaces/ns/pods/p/status") == rbac.ResourceRequest(
        "patch", "", "pods/status", "ns", "p"
    )
    assert r("DELETE", "/apis/batch/v1/namespaces/ns/jobs") == rbac.ResourceRequest(
        "deletecollection", "batch", "jobs", "ns", ""
    )
    assert r("GET", "/api/v1/namespaces/akri") == rbac.ResourceRequest("get", "", "namespaces", "", "akri")
    assert r("POST", "/api/v1/nodes") == rbac.ResourceRequest("create", "", "nodes", "", "")
    for discovery in ("/api", "/api/v1", "/apis", "/apis/akri.sh/v0", "/version", "/openapi/v3"):
        assert r("GET", discovery) is None


# --- the agent's admission policy ---------------------------------------------------------------


def agent_policies(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """Every ValidatingAdmissionPolicy in the manifests, compiled with its (one, denying) binding."""
    policies = {o["metadata"]["name"]: o for o in manifests if o["kind"] == "ValidatingAdmissionPolicy"}
    bindings = [o for o in manifests if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    out = {}
    for name, policy in policies.items():
        (binding,) = [b for b in bindings if b["spec"]["policyName"] == name]
        assert binding["spec"]["validationActions"] == ["Deny"]
        out[name] = admission.Policy(policy, binding)
    assert len(bindings) == len(policies)
    return out


@pytest.fixture(scope="module")
def agent_policy(manifests) -> Any:
    return agent_policies(manifests)["akri-agent-configuration-finalizer-only"]


AGENT_USER = "system:serviceaccount:akri:akri-agent"
NODE_EXTRA = "authentication.kubernetes.io/node-name"


def _config(finalizers: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "akri.sh/v0",
        "kind": "Configuration",
        "metadata": {"name": "c", "namespace": "default", "finalizers": finalizers, "labels": {"a": "b"}},
        "spec": {"discoveryHandler": {"name": "debugEcho"}, "capacity": 2, **spec},
    }


def _update(user: str = AGENT_USER, node: str | None = "node-a") -> Any:
    extra = {NODE_EXTRA: [node]} if node else {}
    return admission.Request("akri.sh", "v0", "configurations", "UPDATE", user, extra)


def test_policy_lets_the_agent_add_and_remove_its_own_finalizer(agent_policy) -> None:
    assert agent_policy.evaluate(_update(), _config(["node-b", "node-a"]), _config(["node-b"])) == []
    assert agent_policy.evaluate(_update(), _config(["node-b"]), _config(["node-b", "node-a"])) == []
    # without the node claim in the token any one finalizer may change, nothing else
    assert agent_policy.evaluate(_update(node=None), _config(["x"]), _config([])) == []


@pytest.mark.parametrize(
    ("new", "old", "node", "message"),
    [
        (_config(["node-a"], capacity=5), _config([]), "node-a", "spec"),
        (
            _config([], brokerSpec={"brokerPodSpec": {"containers": [{"name": "x", "image": "evil"}]}}),
            _config([]),
            "node-a",
            "spec",
        ),
        (
            {**_config([]), "metadata": {**_config([])["metadata"], "labels": {}}},
            _config([]),
            "node-a",
            "labels",
        ),
        (_config(["node-b"]), _config([]), "node-a", "its own finalizer"),
        (_config([]), _config(["node-b"]), "node-a", "its own finalizer"),
        (_config(["node-a", "x"]), _config([]), None, "one finalizer"),
    ],
)
def test_policy_refuses_any_other_agent_change(agent_policy, new, old, node, message) -> None:
    failures = agent_policy.evaluate(_update(node=node), new, old)
    assert failures and any(message in f for f in failures), failures


def test_policy_ignores_everyone_but_the_agent(agent_policy) -> None:
    admin = _update(user="kubernetes-admin", node=None)
    assert agent_policy.evaluate(admin, _config([], capacity=9), _config([])) is None
    create = admission.Request("akri.sh", "v0", "configurations", "CREATE", AGENT_USER, {})
    assert agent_policy.evaluate(create, _config([]), None) is None


def test_webhook_does_not_gate_the_agents_finalizer_updates(manifests) -> None:
    """A Configuration must be deletable while the webhook is down: the agent must be able to
    take its finalizer off. The webhook's matchConditions exclude exactly the agent."""
    (vwc,) = [o for o in manifests if o["kind"] == "ValidatingWebhookConfiguration"]
    (hook,) = vwc["webhooks"]
    (cond,) = hook["matchConditions"]
    policy = admission.Policy(
        {
            "metadata": {"name": "wh"},
            "spec": {
                "matchConstraints": {"resourceRules": hook["rules"]},
                "matchConditions": [cond],
                "validations": [{"expression": "false", "message": "sent to the webhook"}],
            },
        }
    )
    cfg = _config([])
    assert policy.evaluate(_update(), cfg, cfg) is None
    assert policy.evaluate(_update(user="system:serviceaccount:default:someone"), cfg, cfg) == [
        "sent to the webhook"
    ]


# --- the agent under enforced RBAC --------------------------------------------------------------


class Enforcer:
    """aiohttp middleware: kube-apiserver's authorization and the agent's admission policy in
    front of the API double, per bearer token; records every decision."""

    def __init__(
        self,
        objects: list[dict[str, Any]],
        tokens: dict[str, tuple[str, str] | None],
        policies: list[Any],
        store: Any,
        node_of: dict[str, str],
    ) -> None:
        self.authz = rbac.Authorizer(objects)
        self.tokens = tokens
        self.policies = policies
        self.store = store
        self.node_of = node_of
        self.log: list[tuple[str, Any, str]] = []  # (token, request, "allowed" | "forbidden" | "denied")
        self.admitted_by_policy: dict[str, int] = {}  # policy -> writes it applied to and let through

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if token not in self.tokens:
            return _status(401, "Unauthorized", "unknown token")
        identity = self.tokens[token]
        req = rbac.request_from_http(request.method, request.path, request.query_string)
        if identity is None or req is None:  # the admin, or discovery
            return await handler(request)
        ns, sa = identity
        if not self.authz.allowed(ns, sa, req):
            self.log.append((token, req, "forbidden"))
            return _status(403, "Forbidden", f'{req} is forbidden: User "system:serviceaccount:{ns}:{sa}"')
        if request.method in ("PUT", "POST", "DELETE") and req.resource in ("configurations", "instances"):
            # aiohttp keeps the body for the handler; a DELETE's body is its options, not an object
            body = json.loads(await request.read()) if request.method != "DELETE" else None
            old = self.store.get_object(req.resource, req.name, req.namespace) if req.name else None
            operation = {"PUT": "UPDATE", "POST": "CREATE", "DELETE": "DELETE"}[request.method]
            areq = admission.Request(
                req.group,
                "v0",
                req.resource,
                operation,
                f"system:serviceaccount:{ns}:{sa}",
                {NODE_EXTRA: [self.node_of[token]]},
            )
            for policy in self.policies:
                # the deploy/ policies with params take the Configurations of the namespace
                params = (
                    self.store.list_objects("configurations", req.namespace)
                    if policy.param_kind == ("akri.sh/v0", "Configuration")
                    else None
                )
                failures = policy.evaluate(areq, body, old, params)
                if failures is not None and not failures:
                    self.admitted_by_policy[policy.name] = self.admitted_by_policy.get(policy.name, 0) + 1
                if failures:
                    self.log.append((token, req, "denied"))
                    return _status(422, "Invalid", f"ValidatingAdmissionPolicy {policy.name}: {failures}")
        self.log.append((token, req, "allowed"))
        return await handler(request)

    def used(self, token: str) -> dict[tuple[str, str], set[str]]:
        out: dict[tuple[str, str], set[str]] = {}
        for t, req, verdict in self.log:
            if t == token and verdict == "allowed":
                out.setdefault((req.group, req.resource), set()).add(req.verb)
        return out

    def refused(self, token: str) -> list[str]:
        return [f"{verdict}: {req}" for t, req, verdict in self.log if t == token and verdict != "allowed"]


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        },
        status=code,
    )


# the API double enforcing RBAC and admission policies answers more slowly: more patience
until = functools.partial(_until, limit=15.0)


@contextlib.asynccontextmanager
async def enforced_apiserver(objects: list[dict[str, Any]], policies: list[Any], directory: Path):
    from akri.testing.apiserver import ApiServer, kubeconfig_dict

    api = ApiServer(bookmark_interval=1.0)
    tokens: dict[str, tuple[str, str] | None] = {"admin": None, "agent-a": ("akri", "akri-agent")}
    enforcer = Enforcer(objects, tokens, policies, api.store, {"agent-a": "node-a"})
    inner = api.handler

    def make_app() -> web.Application:
        app = web.Application(middlewares=[enforcer.middleware], client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", inner.handle)
        return app

    api.handler.make_app = make_app  # type: ignore[method-assign]
    async with api:

        def kubeconfig(token: str, name: str) -> str:
            path = directory / name
            path.write_text(yaml.safe_dump(kubeconfig_dict(api.url, token=token)))
            return str(path)

        yield api, enforcer, kubeconfig


@pytest.mark.slow
async def test_agent_runs_with_exactly_the_granted_permissions(manifests, tmp_path: Path) -> None:
    from akri.agent.core import AgentCore, AgentSettings
    from akri.discovery.handlers.debug_echo import DebugEchoHandler
    from akri.kube.api import Kube
    from akri.kube.resources import Configuration

    reader = [o for o in yaml.safe_load_all(SECRET_READER.read_text()) if o]
    role = reader[0]["rules"]
    secret_name, cm_name = role[0]["resourceNames"][0], role[1]["resourceNames"][0]
    policies = agent_policies(manifests)
    async with enforced_apiserver(manifests + reader, list(policies.values()), tmp_path) as (
        api,
        enforcer,
        kubeconfig,
    ):
        admin = Kube.from_config(kubeconfig("admin", "admin.kubeconfig"))
        try:
            api.store.create_object(
                "secrets",
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": secret_name},
                    "data": {"password": base64.b64encode(b"s3cret").decode()},
                },
                namespace="default",
            )
            api.store.create_object(
                "configmaps",
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": cm_name},
                    "data": {"mode": "fast"},
                },
                namespace="default",
            )
            await admin.create(
                Configuration,
                {
                    "apiVersion": "akri.sh/v0",
                    "kind": "Configuration",
                    "metadata": {"name": "akri-debug-echo-foo", "namespace": "default"},
                    "spec": {
                        "discoveryHandler": {
                            "name": "debugEcho",
                            "discoveryDetails": "descriptions:\n  - bar0\n  - bar1\n",
                            "discoveryProperties": [
                                {
                                    "name": "password",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": secret_name,
                                            "namespace": "default",
                                            "key": "password",
                                        }
                                    },
                                },
                                {
                                    "name": "mode",
                                    "valueFrom": {
                                        "configMapKeyRef": {
                                            "name": cm_name,
                                            "namespace": "default",
                                            "key": "mode",
                                        }
                                    },
                                },
                            ],
                        },
                        "capacity": 2,
                    },
                },
                namespace="default",
            )

            availability = tmp_path / "availability"
            settings = AgentSettings(
                node_name="node-a",
                discovery_handlers_directory=tmp_path / "handlers",
                kubeconfig=kubeconfig("agent-a", "agent.kubeconfig"),
                embedded_handlers=[DebugEchoHandler(shared=False, availability_file=availability)],
                offline_grace_seconds=0,
                reconnect_timeout=0.5,
            )

            def instances() -> list[dict[str, Any]]:
                return api.store.list_objects("instances", "default")

            async with AgentCore(settings) as core:
                # properties resolved (Secret and ConfigMap read), Instances created
                found = await until(lambda: len(instances()) == 2 and instances(), "two Instances")
                config = api.store.get_object("configurations", "akri-debug-echo-foo", "default")
                await until(
                    lambda: (
                        "node-a"
                        in (
                            api.store.get_object("configurations", "akri-debug-echo-foo", "default")[
                                "metadata"
                            ].get("finalizers")
                            or []
                        )
                    ),
                    "the agent's finalizer on the Configuration",
                )
                assert config["spec"]["capacity"] == 2
                # a slot claimed and released (what Allocate and the reclaimer do)
                name = found[0]["metadata"]["name"]
                assert await core.slot_store.claim("default", name, f"{name}-0", "node-a")
                assert (
                    api.store.get_object("instances", name, "default")["spec"]["deviceUsage"][f"{name}-0"]
                    == "node-a"
                )
                assert await core.slot_store.release("default", name, f"{name}-0", "node-a")
                # the devices go away: the agent deletes their Instances
                availability.write_text("OFFLINE")
                await until(lambda: not instances(), "Instances deleted")
                availability.write_text("ONLINE")
                await until(lambda: len(instances()) == 2, "Instances back")
                # the Configuration's capacity and brokerProperties change: the agent copies them
                # into its Instances (what the Instance policy lets through)
                changed = api.store.get_object("configurations", "akri-debug-echo-foo", "default")
                changed["spec"]["capacity"] = 3
                changed["spec"]["brokerProperties"] = {"RESOLUTION_WIDTH": "800"}
                await admin.replace(Configuration, changed, namespace="default")

                def followed() -> bool:
                    return len(instances()) == 2 and all(
                        i["spec"]["capacity"] == 3
                        and i["spec"]["brokerProperties"].get("RESOLUTION_WIDTH") == "800"
                        and "DEBUG_ECHO_DESCRIPTION" in i["spec"]["brokerProperties"]
                        for i in instances()
                    )

                await until(followed, "Instances following the changed Configuration")
                # the Configuration is deleted: the agent lets go of it
                await admin.delete(Configuration, "akri-debug-echo-foo", "default")
                await until(
                    lambda: api.store.get_object("configurations", "akri-debug-echo-foo", "default") is None,
                    "Configuration gone (finalizer removed)",
                )
        finally:
            await admin.close()

    assert enforcer.refused("agent-a") == []
    # the agent's writes went through its admission policies: the Configuration finalizer added
    # and removed; Instances created, joined, slots claimed and freed, left, deleted, and
    # updated to the changed Configuration
    admitted = enforcer.admitted_by_policy
    assert admitted["akri-agent-configuration-finalizer-only"] >= 2
    assert admitted["akri-agent-instance-own-node"] >= 10
    assert admitted["akri-agent-instance-follows-configuration"] >= 6
    assert set(admitted) == set(policies)
    used = enforcer.used("agent-a")
    assert used.pop(("", "secrets")) == {"get"}
    assert used.pop(("", "configmaps")) == {"get"}
    grants = granted(manifests, "akri-agent")
    assert set(used) == set(grants)
    # every verb granted was needed, except the re-read of a Configuration after a 409 (no
    # other writer races the agent here); the static test above accounts for that one
    missing = {res: grants[res] - used[res] for res in grants if grants[res] - used[res]}
    assert missing == {("akri.sh", "configurations"): {"get"}}
