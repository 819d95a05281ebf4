"""User and group names by id, as JSON fragments (cached: ids repeat on every event).

Names come from the host's user database (``pwd``/``grp``). Like libsinsp without a
container user table, a uid unknown on the host has no name: the fragment leaves ``name``
out and the engine shows ``<NA>`` (``root`` for uid 0).
"""

from __future__ import annotations

import grp
import pwd

import orjson

_LOGIN_UNSET = 0xFFFFFFFF


class UserTable:
    """``"user":{...},"group":{...}`` fragments keyed by (uid, gid, loginuid)."""

    def __init__(self, limit: int = 4096) -> None:
        self._users: dict[int, dict[str, object]] = {}
        self._groups: dict[int, str | None] = {}
        self._frags: dict[tuple[int, int, int], bytes] = {}
        self.limit = limit

    def user(self, uid: int) -> dict[str, object]:
        u = self._users.get(uid)
        if u is None:
            u = {"uid": uid}
            try:
                pw = pwd.getpwuid(uid)
                u.update({"name": pw.pw_name, "homedir": pw.pw_dir, "shell": pw.pw_shell})
            except (KeyError, OverflowError):
                pass
            if len(self._users) >= self.limit:
                self._users.clear()
            self._users[uid] = u
        return u

    def group_name(self, gid: int) -> str | None:
        if gid not in self._groups:
            try:
                name: str | None = grp.getgrgid(gid).gr_name
            except (KeyError, OverflowError):
                name = None
            if len(self._groups) >= self.limit:
                self._groups.clear()
            self._groups[gid] = name
        return self._groups[gid]

    def fragment(self, uid: int, gid: int, loginuid: int) -> bytes:
        key = (uid, gid, loginuid)
        frag = self._frags.get(key)
        if frag is None:
            user = dict(self.user(uid))
            if loginuid == _LOGIN_UNSET or loginuid < 0:
                user["loginuid"] = -1
            else:
                user["loginuid"] = loginuid
                name = self.user(loginuid).get("name")
                if name:
                    user["loginname"] = name
            group: dict[str, object] = {"gid": gid}
            gname = self.group_name(gid)
            if gname:
                group["name"] = gname
            frag = b'"user":' + orjson.dumps(user) + b',"group":' + orjson.dumps(group)
            if len(self._frags) >= self.limit:
                self._frags.clear()
            self._frags[key] = frag
        return frag

    def name_of(self, uid: int) -> str:
        """``evt.arg.uid`` text: the user name, ``<NA>`` when unknown."""
        name = self.user(uid).get("name")
        return str(name) if name else "<NA>"

    def group_text(self, gid: int) -> str:
        return self.group_name(gid) or "<NA>"
