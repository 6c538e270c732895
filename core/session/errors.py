"""The one exception of the session package."""

from __future__ import annotations


class SessionError(ValueError):
    """A session file that cannot be used (not a session, damaged, too new, unsafe), or
    data a recorder cannot store. The message is one line and names the file when there
    is one."""
