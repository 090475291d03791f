"""Counters of the ONVIF handler: what it sent, what it received, and what it skipped.

Hostile or broken input never stops discovery: it is skipped, counted here by reason, logged
at DEBUG each time and as a WARNING at most every WARN_EVERY seconds (so a flood cannot
flood the log).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("akri.discovery.handlers.onvif")

WARN_EVERY = 10.0


@dataclass
class OnvifStats:
    probes_sent: int = 0          # Probe datagrams sent (multicast per interface, and directed)
    datagrams: int = 0            # datagrams received: probe answers and announcements
    probe_matches: int = 0        # ProbeMatch entries parsed
    hellos: int = 0
    byes: int = 0
    ignored: int = 0              # well-formed messages meant for others (Probe, Resolve, other types)
    skipped: Counter[str] = field(default_factory=Counter)       # bad datagrams, by reason
    soap_calls: int = 0
    soap_failed: Counter[str] = field(default_factory=Counter)   # failed SOAP calls, by reason
    credentials_withheld: int = 0  # signed calls not made: the XAddr is not on a listed address
    _last_warning: float = field(default=0.0, repr=False)
    _withheld_warned: set[str] = field(default_factory=set, repr=False)

    def skip(self, reason: str, source: Any, message: str) -> None:
        """Count a datagram (or endpoint) that was dropped, and say why."""
        self.skipped[reason] += 1
        self._report(f"skipped a WS-Discovery datagram from {_where(source)} ({reason}: {message}); "
                     f"{sum(self.skipped.values())} skipped so far")

    def soap_failure(self, reason: str, url: str, message: str, *, quiet: bool = False) -> None:
        """Count a failed SOAP call. `quiet`: an expected failure (a camera that went away)."""
        self.soap_failed[reason] += 1
        text = f"SOAP call to {url} failed ({reason}: {message})"
        if quiet or reason in ("timeout", "connection"):
            log.debug("%s", text)
        else:
            self._report(text + f"; {sum(self.soap_failed.values())} failed calls so far")

    def withhold_credentials(self, url: str) -> None:
        """Count a call that goes out unsigned because `url` is not on an `ipAddresses` address."""
        self.credentials_withheld += 1
        text = (f"not sending credentials to {url}: its host is not in the Configuration's ipAddresses "
                f"include list (anyone can announce a camera's UUID); its IP and MAC stay unknown")
        # once per URL (bounded like the tracker's known cameras), not rate-limited with the
        # garbage warnings: an operator wondering why credentials are not used must see it
        if url not in self._withheld_warned and len(self._withheld_warned) < 1024:
            self._withheld_warned.add(url)
            log.warning("onvif: %s", text)
        else:
            log.debug("%s", text)

    def _report(self, text: str) -> None:
        log.debug("%s", text)
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning("onvif: %s", text)

    def as_dict(self) -> dict[str, Any]:
        return {
            "probes_sent": self.probes_sent,
            "datagrams": self.datagrams,
            "probe_matches": self.probe_matches,
            "hellos": self.hellos,
            "byes": self.byes,
            "ignored": self.ignored,
            "skipped": dict(self.skipped),
            "soap_calls": self.soap_calls,
            "soap_failed": dict(self.soap_failed),
            "credentials_withheld": self.credentials_withheld,
        }


def _where(source: Any) -> str:
    if isinstance(source, tuple) and len(source) >= 2:
        return f"{source[0]}:{source[1]}"
    return str(source)
