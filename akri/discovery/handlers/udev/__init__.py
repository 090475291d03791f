"""udev discovery handler: local devices selected by udev rules, kept current by uevents."""

from akri.discovery.handlers.udev.handler import UdevDetails, UdevHandler, parse_details

__all__ = ["UdevDetails", "UdevHandler", "parse_details"]
