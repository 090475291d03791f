"""`--self-signed`: get a serving certificate without hand-made files (upstream issue #569).

1. Read the Secret `<secret>`; if it holds a bundle valid for the Service's DNS names (and not
   about to expire), use it: every replica then serves the same certificate.
2. Otherwise generate one and store it: create the Secret, or replace it guarded by the
   resourceVersion read. When two replicas race, one write wins (409 for the other), and the
   loser re-reads and adopts the winner's bundle.
3. Write the CA into `clientConfig.caBundle` of the ValidatingWebhookConfiguration's webhooks
   that point at this Service, and keep checking it: a `helm upgrade` that re-applies the
   configuration without a caBundle is repaired within a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from akri.kube.api import Kube
from akri.kube.errors import describe, is_conflict, is_transient
from akri.kube.resources import Secret, ValidatingWebhookConfiguration
from akri.retry import Backoff
from akri.webhook import certs

log = logging.getLogger(__name__)

DEFAULT_NAME = "akri-webhook-configuration"  # the Helm chart's name for Service, Secret and configuration
ATTEMPTS = 5
CA_BUNDLE_RECHECK = 60.0
CA_BUNDLE_RETRY = 2.0
STARTUP_BACKOFF = Backoff(initial=0.5, factor=2.0, maximum=30.0, jitter=0.5)


@dataclass(frozen=True, slots=True)
class SelfSignedSettings:
    namespace: str
    service: str = DEFAULT_NAME
    secret: str = DEFAULT_NAME
    webhook_configuration: str = DEFAULT_NAME
    cluster_domain: str = "cluster.local"

    @property
    def dns_names(self) -> list[str]:
        return certs.service_dns_names(self.service, self.namespace, self.cluster_domain)


class BootstrapError(RuntimeError):
    pass


def _secret_body(settings: SelfSignedSettings, bundle: certs.CertBundle,
                 existing: dict[str, Any] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": settings.secret, "namespace": settings.namespace}
    if existing is not None:
        old_meta = existing.get("metadata") or {}
        meta = {**old_meta, **meta, "resourceVersion": old_meta.get("resourceVersion")}
    labels = dict(meta.get("labels") or {})
    labels["app.kubernetes.io/managed-by"] = "akri-webhook"
    meta["labels"] = labels
    old_data = (existing or {}).get("data") or {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        # the type of an existing Secret cannot change: keep it (an Opaque one works as well)
        "type": (existing or {}).get("type") or "kubernetes.io/tls",
        "data": {**old_data, **bundle.secret_data()},
    }


async def ensure_certificate(kube: Kube, settings: SelfSignedSettings) -> certs.CertBundle:
    """The bundle every replica agrees on (reused from the Secret, or made and stored there)."""
    names = settings.dns_names
    for _ in range(ATTEMPTS):
        secret = await kube.get_or_none(Secret, settings.secret, settings.namespace)
        if secret is not None:
            bundle = certs.CertBundle.from_secret_data(secret.get("data"))
            if bundle is not None:
                found = certs.problems(bundle, names)
                if not found:
                    log.info("using the certificate in Secret %s/%s", settings.namespace, settings.secret)
                    return bundle
                log.info("Secret %s/%s cannot be reused (%s); replacing it", settings.namespace,
                         settings.secret, "; ".join(found))
        fresh = certs.generate(names)
        body = _secret_body(settings, fresh, secret)
        try:
            if secret is None:
                await kube.create(Secret, body, namespace=settings.namespace)
            else:
                await kube.replace(Secret, body, namespace=settings.namespace)
        except Exception as exc:
            if is_conflict(exc):  # another replica wrote first: adopt its bundle
                continue
            raise
        log.info("stored a new self-signed certificate for %s in Secret %s/%s", names[-1],
                 settings.namespace, settings.secret)
        return fresh
    raise BootstrapError(
        f"Secret {settings.namespace}/{settings.secret}: kept conflicting after {ATTEMPTS} attempts")


async def ensure_certificate_patiently(kube: Kube, settings: SelfSignedSettings,
                                      backoff: Backoff = STARTUP_BACKOFF) -> certs.CertBundle:
    """`ensure_certificate`, retried while the API server cannot be reached (the webhook has
    nothing to serve without it, and exiting would only restart it). Other errors propagate."""
    failures = 0
    while True:
        try:
            return await ensure_certificate(kube, settings)
        except Exception as exc:
            if not is_transient(exc):
                raise
            delay = backoff.delay(failures)
            failures += 1
            log.warning("cannot reach the API server for the certificate Secret (%s); retrying in %.1f s",
                        describe(exc), delay)
            await asyncio.sleep(delay)


def _targets_us(webhook: Any, settings: SelfSignedSettings) -> bool:
    config = webhook.get("clientConfig") if isinstance(webhook, dict) else None
    service = config.get("service") if isinstance(config, dict) else None
    return (isinstance(service, dict) and service.get("name") == settings.service
            and service.get("namespace", "default") == settings.namespace)


async def write_ca_bundle(kube: Kube, settings: SelfSignedSettings, bundle: certs.CertBundle) -> bool | None:
    """Set caBundle on our webhooks. True: written or already right; False: the configuration
    has no webhook for our Service; None: the configuration does not exist (yet)."""
    ca = bundle.ca_bundle_b64
    matched = [False]

    def mutate(obj: dict[str, Any]) -> None:
        for webhook in obj.get("webhooks") or []:
            if _targets_us(webhook, settings):
                matched[0] = True
                webhook["clientConfig"]["caBundle"] = ca

    result = await kube.update_with_retry(
        ValidatingWebhookConfiguration, settings.webhook_configuration, None, mutate)
    if result is None:
        return None
    return matched[0]


async def keep_ca_bundle(kube: Kube, settings: SelfSignedSettings, bundle: certs.CertBundle, *,
                         recheck: float = CA_BUNDLE_RECHECK, retry: float = CA_BUNDLE_RETRY) -> None:
    """Forever: make sure the webhook configuration trusts our CA (never raises)."""
    reported: object = object()
    while True:
        try:
            state = await write_ca_bundle(kube, settings, bundle)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state = "error"
            log.warning("could not update ValidatingWebhookConfiguration %s: %s",
                        settings.webhook_configuration, describe(exc))
        if state != reported:
            name = settings.webhook_configuration
            if state is True:
                log.info("ValidatingWebhookConfiguration %s trusts the webhook's CA", name)
            elif state is None:
                log.warning("ValidatingWebhookConfiguration %s not found; will retry", name)
            elif state is False:
                log.warning("ValidatingWebhookConfiguration %s has no webhook for Service %s/%s",
                            name, settings.namespace, settings.service)
            reported = state
        await asyncio.sleep(recheck if state is True else retry)


def write_files(bundle: certs.CertBundle, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """tls.crt and tls.key in `directory` (key readable by the owner only), for ssl.SSLContext."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    crt, key = root / "tls.crt", root / "tls.key"
    crt.write_bytes(bundle.cert_pem)
    # a fresh 0600 file replaced into place: an existing tls.key keeps neither a looser mode nor a
    # symlink to somewhere else (O_EXCL|O_NOFOLLOW on the temporary name)
    tmp = root / f".tls.key.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(bundle.key_pem)
    os.replace(tmp, key)
    return crt, key
