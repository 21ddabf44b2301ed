"""Validators shared by the API, the console and the commands."""

from __future__ import annotations

import re

# RFC 1123 hostname (labels of letters, digits and hyphens), or Redrive's `_any`.
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$|^_any$"
)
