"""OPC UA discovery handler: servers found with FindServers through discovery URLs (an LDS or
the servers themselves). asyncua is imported only when discovery runs (`akri[opcua]` extra)."""

from akri.discovery.handlers.opcua.details import DEFAULT_DISCOVERY_URL, OpcuaDetails, parse_details
from akri.discovery.handlers.opcua.handler import INSTALL_HINT, OPCUA_DISCOVERY_URL, OpcuaHandler

__all__ = ["DEFAULT_DISCOVERY_URL", "INSTALL_HINT", "OPCUA_DISCOVERY_URL", "OpcuaDetails", "OpcuaHandler",
           "parse_details"]
