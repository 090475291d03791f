"""Parsing XML that arrives from the network (WS-Discovery datagrams, SOAP answers).

Anything on the LAN can send us a datagram, and a camera's web server can answer anything,
so the parser is built to refuse what SOAP never needs: a document type declaration (SOAP
1.1 and 1.2 forbid one; refusing it rules out entity expansion bombs and external entities
in one place), documents over a size cap, and absurd nesting. It uses the standard
library's expat directly (no defusedxml: refusing every DTD is the whole policy, and it is
a few lines) and builds a plain ElementTree with `{namespace}local` tags.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import NoReturn
from xml.parsers import expat

# Deepest element nesting accepted. A GetNetworkInterfaces answer is about 8 deep.
MAX_DEPTH = 64
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


class XmlRejected(ValueError):
    """The bytes are not an XML document we accept. `reason` is a short counter key:
    `malformed` (not well-formed, truncated, unbound prefix), `unsafe` (DTD, entities, too
    deep) or `oversized`; from soap_envelope() also `wrong-namespace` (not a SOAP Envelope)
    and `invalid` (no Body content)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _refuse(what: str) -> NoReturn:
    raise XmlRejected("unsafe", f"{what} not allowed")


def _qualified(name: str) -> str:
    # expat with namespace_separator="}" reports "uri}local" for namespaced names
    return "{" + name if "}" in name else name


def parse_xml(data: bytes, *, max_bytes: int) -> ET.Element:
    """The root element of `data`; raises XmlRejected instead of ever expanding an entity."""
    if len(data) > max_bytes:
        raise XmlRejected("oversized", f"{len(data)} bytes is over the {max_bytes}-byte limit")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise XmlRejected("unsafe", f"nesting deeper than {MAX_DEPTH} elements")
        builder.start(_qualified(name), {_qualified(k): v for k, v in attrs.items()})

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(_qualified(name))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = lambda *_: _refuse("a document type declaration (DTD)")
    parser.EntityDeclHandler = lambda *_: _refuse("an entity declaration")
    parser.ExternalEntityRefHandler = lambda *_: _refuse("an external entity")
    # Without a DTD only the five predefined entities exist; anything else is an error, but
    # say so explicitly rather than rely on expat's default for undeclared references.
    parser.SkippedEntityHandler = lambda *_: _refuse("an undeclared entity reference")
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlRejected("malformed", f"not well-formed XML: {expat.errors.messages[exc.code]} "
                                       f"(line {exc.lineno}, column {exc.offset})") from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps far below the limit
        raise XmlRejected("unsafe", "nesting too deep") from None
    root = builder.close()
    if root is None:  # pragma: no cover - expat rejects an empty document first
        raise XmlRejected("malformed", "no root element")
    return root


def soap_envelope(data: bytes, *, max_bytes: int) -> tuple[ET.Element | None, ET.Element]:
    """The Header (None when absent) and the Body of a SOAP 1.2 or 1.1 envelope, parsed by
    parse_xml(); the Body has at least one child element."""
    root = parse_xml(data, max_bytes=max_bytes)
    env = namespace(root.tag)
    if local_name(root.tag) != "Envelope" or env not in (SOAP12, SOAP11):
        raise XmlRejected("wrong-namespace", f"root element is {root.tag}, not a SOAP Envelope")
    body = root.find(f"{{{env}}}Body")
    if body is None or len(body) == 0:
        raise XmlRejected("invalid", "SOAP envelope without a Body element")
    return root.find(f"{{{env}}}Header"), body


def escape(value: str) -> str:
    """Text made safe for XML content and attribute values (xml.sax.saxutils would pull in
    urllib and http.client, a few MB, for three replacements)."""
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def text(element: ET.Element | None) -> str:
    """All character data directly in `element`, stripped ("" when absent)."""
    return (element.text or "").strip() if element is not None else ""


def children(element: ET.Element, local: str) -> list[ET.Element]:
    """Child elements named `local` in any namespace (the way upstream matches camera answers)."""
    return [child for child in element if local_name(child.tag) == local]


def child(element: ET.Element | None, local: str) -> ET.Element | None:
    if element is None:
        return None
    for c in element:
        if local_name(c.tag) == local:
            return c
    return None
