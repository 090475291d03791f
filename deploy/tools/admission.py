"""Evaluate a ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) on one request, offline.

tests/test_deploy_rbac.py puts the deploy/ policies in front of the API server double with this,
so the agent's real writes go through the same CEL rules kube-apiserver would apply. CEL is
evaluated by cel-python (`celpy`), which implements standard CEL; the policies in deploy/ keep
to it (no Kubernetes CEL library functions), and `Policy` refuses any expression that does not
compile.

Modelled: matchConstraints.resourceRules (groups, versions, operations, resources; no
selectors), matchConditions, variables, validations (expression, message, messageExpression),
paramKind with the binding's paramRef (a selector's matchLabels, parameterNotFoundAction): the
caller passes the candidate params (objects of paramKind in the request's namespace), the
policy keeps those the selector picks and, like kube-apiserver, evaluates once per param and
fails when any evaluation fails.
Not modelled: auditAnnotations, paramRef.name / matchExpressions, the binding's matchResources
(the bindings in deploy/ have none: they apply the policy everywhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import celpy
from celpy import celtypes


@dataclass(frozen=True)
class Request:
    group: str
    version: str
    resource: str
    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    username: str
    extra: Mapping[str, list[str]] = field(default_factory=dict)
    groups: tuple[str, ...] = ()

    def as_cel(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "resource": {"group": self.group, "version": self.version, "resource": self.resource},
            "userInfo": {"username": self.username, "groups": list(self.groups), "extra": dict(self.extra)},
        }


class PolicyError(ValueError):
    """The policy cannot be evaluated (an expression that does not compile or fails to run)."""


def _rule_matches(rule: Mapping[str, Any], req: Request) -> bool:
    def hit(values: Any, value: str) -> bool:
        return any(v == "*" or v == value for v in values or [])

    return (
        hit(rule.get("apiGroups"), req.group)
        and hit(rule.get("apiVersions"), req.version)
        and hit(rule.get("operations"), req.operation)
        and hit(rule.get("resources"), req.resource)
    )


class Policy:
    """One ValidatingAdmissionPolicy, compiled."""

    def __init__(self, policy: Mapping[str, Any], binding: Mapping[str, Any] | None = None) -> None:
        self.name = policy["metadata"]["name"]
        self.spec = policy["spec"]
        self.param_ref: Mapping[str, Any] = ((binding or {}).get("spec") or {}).get("paramRef") or {}
        if self.spec.get("paramKind") and not self.param_ref:
            raise PolicyError(f"policy {self.name} has a paramKind: its binding needs a paramRef")
        if self.param_ref and (
            self.param_ref.get("name") or (self.param_ref.get("selector") or {}).get("matchExpressions")
        ):
            raise PolicyError(f"policy {self.name}: only paramRef.selector.matchLabels is modelled")
        self._env = celpy.Environment()
        self._programs: dict[str, Any] = {}
        for expr in self.expressions():
            self._program(expr)

    def expressions(self) -> list[str]:
        spec = self.spec
        exprs = [c["expression"] for c in spec.get("matchConditions") or []]
        exprs += [v["expression"] for v in spec.get("variables") or []]
        for v in spec.get("validations") or []:
            exprs.append(v["expression"])
            if v.get("messageExpression"):
                exprs.append(v["messageExpression"])
        return exprs

    def _program(self, expr: str) -> Any:
        if expr not in self._programs:
            try:
                self._programs[expr] = self._env.program(self._env.compile(expr))
            except celpy.CELParseError as exc:
                raise PolicyError(f"policy {self.name}: cannot compile {expr!r}: {exc}") from exc
        return self._programs[expr]

    def _eval(self, expr: str, activation: dict[str, Any]) -> Any:
        # kube-apiserver treats an evaluation error as a failure of the policy (failurePolicy
        # decides); here it is an error, so a broken expression cannot pass unnoticed
        try:
            result = self._program(expr).evaluate(activation)
        except celpy.CELEvalError as exc:
            raise PolicyError(f"policy {self.name}: {expr!r} failed: {exc}") from exc
        if isinstance(result, celpy.CELEvalError):
            raise PolicyError(f"policy {self.name}: {expr!r} failed: {result}")
        return result

    def matches(self, req: Request) -> bool:
        rules = (self.spec.get("matchConstraints") or {}).get("resourceRules") or []
        return any(_rule_matches(r, req) for r in rules)

    @property
    def param_kind(self) -> tuple[str, str] | None:
        """(apiVersion, kind) of the params, or None for a policy without them."""
        kind = self.spec.get("paramKind")
        return (kind["apiVersion"], kind["kind"]) if kind else None

    def selects(self, param: Mapping[str, Any]) -> bool:
        wanted = (self.param_ref.get("selector") or {}).get("matchLabels") or {}
        labels = (param.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in wanted.items())

    def evaluate(self, req: Request, obj: Any, old: Any, params: list[Any] | None = None) -> list[str] | None:
        """None when the policy does not apply; else the messages of the failed validations.

        `params`: the objects of paramKind the selector may pick (ignored without paramKind)."""
        if not self.matches(req):
            return None
        if self.param_kind is None:
            return self._evaluate(req, obj, old, None)
        chosen = [p for p in params or [] if self.selects(p)]
        if not chosen:
            if self.param_ref.get("parameterNotFoundAction") == "Allow":
                return None
            return [f"policy {self.name}: no params found"]
        results = [self._evaluate(req, obj, old, p) for p in chosen]
        if all(r is None for r in results):
            return None
        return list(dict.fromkeys(f for r in results for f in r or []))

    def _evaluate(self, req: Request, obj: Any, old: Any, param: Any) -> list[str] | None:
        activation: dict[str, Any] = {
            "object": celpy.json_to_cel(obj),
            "oldObject": celpy.json_to_cel(old),
            "request": celpy.json_to_cel(req.as_cel()),
            "params": celpy.json_to_cel(param),
        }
        for cond in self.spec.get("matchConditions") or []:
            if not bool(self._eval(cond["expression"], activation)):
                return None
        variables: dict[Any, Any] = {}
        for var in self.spec.get("variables") or []:
            activation["variables"] = celtypes.MapType(variables)
            variables[celtypes.StringType(var["name"])] = self._eval(var["expression"], activation)
        activation["variables"] = celtypes.MapType(variables)
        failures = []
        for v in self.spec.get("validations") or []:
            if not bool(self._eval(v["expression"], activation)):
                if v.get("messageExpression"):
                    failures.append(str(self._eval(v["messageExpression"], activation)))
                else:
                    failures.append(v.get("message") or f"failed expression: {v['expression']}")
        return failures
