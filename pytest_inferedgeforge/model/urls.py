"""URLs as Forge writes them anywhere: without user info.

An endpoint may carry credentials (``http://user:password@host``), and an HTTP
client's error quotes the URL it called; that text would otherwise reach
``build.log`` (signed and pushed to the shared cache), the JSON report and JUnit.
"""

from __future__ import annotations

import re

_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]*@")


def redact_url(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it removed: a URL alone, or a message quoting URLs."""
    return _USER_INFO.sub(r"\g<scheme>", text)
