"""ONVIF discovery handler: IP cameras found by WS-Discovery (probes, Hello and Bye) and
checked over their ONVIF device service."""

from akri.discovery.handlers.onvif.credentials import Credential, CredentialStore
from akri.discovery.handlers.onvif.details import OnvifDetails, parse_details
from akri.discovery.handlers.onvif.handler import OnvifHandler
from akri.discovery.handlers.onvif.stats import OnvifStats

__all__ = ["Credential", "CredentialStore", "OnvifDetails", "OnvifHandler", "OnvifStats", "parse_details"]
