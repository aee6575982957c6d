"""Text made safe for XML documents (JUnit, SVG, HTML): host names and error texts come from
inventories and remote hosts, so they may hold markup or characters XML cannot carry."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

# XML 1.0 allows tab, newline, carriage return and these ranges; anything else is replaced.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_chars(text: str) -> str:
    """`text` with every character XML 1.0 cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


def xml_text(text: str) -> str:
    """Element content: markup characters escaped."""
    return escape(xml_chars(text))


def xml_attr(text: str) -> str:
    """An attribute value with its quotes: markup, quotes and line breaks escaped."""
    return quoteattr(xml_chars(text), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})
