"""WebDAV/CardDAV XML: the request bodies we send and the multistatus answers we read.

Bodies are built with the standard library's ElementTree (building resolves nothing).
Answers are parsed with ``defusedxml``, which refuses DTDs, entity declarations and
external references, so a hostile server cannot make us read files or expand a billion
laughs. Everything else about an answer is treated as untrusted too: a malformed one is a
``DavXmlError``, never a traceback.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

__all__ = [
    "CARD",
    "DAV",
    "DavResponse",
    "DavXmlError",
    "multiget_body",
    "parse_multistatus",
    "precondition",
    "propfind_body",
    "sync_collection_body",
]

DAV = "DAV:"
CARD = "urn:ietf:params:xml:ns:carddav"
ET.register_namespace("D", DAV)
ET.register_namespace("C", CARD)


class DavXmlError(ValueError):
    """A server's answer is not the XML we asked for."""


@dataclass
class DavResponse:
    """One ``<response>`` of a multistatus: an href, its status and the properties found.

    ``status`` is the response's own status, or else that of the propstat holding the
    properties (200 when found). ``props`` maps ``{ns}name`` to the property element, only
    for properties whose propstat said 2xx. ``texts`` holds their text content.
    """

    href: str
    status: int
    props: dict[str, ET.Element] = field(default_factory=dict)

    def text(self, name: str) -> str:
        """The text of a found property, or "" (``name`` is ``{ns}local``)."""
        el = self.props.get(name)
        return "".join(el.itertext()) if el is not None else ""

    def hrefs(self, name: str) -> list[str]:
        """The ``<href>`` children of a found property (principal, home set)."""
        el = self.props.get(name)
        if el is None:
            return []
        return [(h.text or "").strip() for h in el.iter(f"{{{DAV}}}href") if (h.text or "").strip()]

    def has_child(self, name: str, child: str) -> bool:
        """Whether a found property has an element ``child`` (e.g. resourcetype/addressbook)."""
        el = self.props.get(name)
        return el is not None and el.find(f".//{child}") is not None


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _prop(parent: ET.Element, names: list[str]) -> None:
    prop = ET.SubElement(parent, _q(DAV, "prop"))
    for name in names:
        ET.SubElement(prop, name)


def _serialize(root: ET.Element) -> bytes:
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def propfind_body(names: list[str]) -> bytes:
    """A PROPFIND asking for properties ``names`` (each ``{ns}local``)."""
    root = ET.Element(_q(DAV, "propfind"))
    _prop(root, names)
    return _serialize(root)


def sync_collection_body(token: str) -> bytes:
    """An RFC 6578 sync-collection REPORT from ``token`` ("" for the initial listing)."""
    root = ET.Element(_q(DAV, "sync-collection"))
    ET.SubElement(root, _q(DAV, "sync-token")).text = token or None
    ET.SubElement(root, _q(DAV, "sync-level")).text = "1"
    _prop(root, [_q(DAV, "getetag")])
    return _serialize(root)


def multiget_body(hrefs: list[str]) -> bytes:
    """An RFC 6352 addressbook-multiget REPORT of ``hrefs``: etag and vCard of each."""
    root = ET.Element(_q(CARD, "addressbook-multiget"))
    _prop(root, [_q(DAV, "getetag"), _q(CARD, "address-data")])
    for href in hrefs:
        ET.SubElement(root, _q(DAV, "href")).text = href
    return _serialize(root)


def _fromstring(data: bytes) -> ET.Element:
    # Imported here: the CLI imports this package only when --carddav is given.
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        root: ET.Element = SafeET.fromstring(data)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise DavXmlError(f"unreadable XML ({type(exc).__name__}: {exc})") from exc
    return root


def _status(el: ET.Element | None) -> int | None:
    """``HTTP/1.1 404 Not Found`` -> 404; absent -> None."""
    if el is None or not el.text:
        return None
    parts = el.text.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise DavXmlError(f"bad status line {el.text.strip()[:60]!r}")
    return int(parts[1])


def _response(el: ET.Element) -> DavResponse:
    href_el = el.find(_q(DAV, "href"))
    href = (href_el.text or "").strip() if href_el is not None else ""
    if not href:
        raise DavXmlError("a response without an href")
    own = _status(el.find(_q(DAV, "status")))
    found: dict[str, ET.Element] = {}
    statuses: list[int] = []
    for ps in el.findall(_q(DAV, "propstat")):
        code = _status(ps.find(_q(DAV, "status"))) or 200
        statuses.append(code)
        prop = ps.find(_q(DAV, "prop"))
        if 200 <= code < 300 and prop is not None:
            found.update((child.tag, child) for child in prop)
    status = own if own is not None else (200 if found or not statuses else statuses[0])
    return DavResponse(href, status, found)


def parse_multistatus(data: bytes) -> tuple[list[DavResponse], str]:
    """Parse a 207 multistatus answer.

    Args:
        data: the body.

    Returns:
        Its responses, and the top-level ``<sync-token>`` (RFC 6578; "" when absent).

    Raises:
        DavXmlError: not XML, not a multistatus, or a response without an href.
    """
    root = _fromstring(data)
    if root.tag != _q(DAV, "multistatus"):
        raise DavXmlError(f"expected a DAV multistatus, got <{root.tag}>")
    responses = [_response(el) for el in root.findall(_q(DAV, "response"))]
    token_el = root.find(_q(DAV, "sync-token"))
    token = (token_el.text or "").strip() if token_el is not None else ""
    return responses, token


def precondition(data: bytes) -> str:
    """The local name of the first precondition in a ``<DAV:error>`` body, or ""."""
    try:
        root = _fromstring(data)
    except DavXmlError:
        return ""
    if root.tag != _q(DAV, "error") or len(root) == 0:
        return ""
    return root[0].tag.rpartition("}")[2]
