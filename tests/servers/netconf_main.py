"""A NETCONF server on loopback until stdin closes: `python netconf_main.py SPEC_JSON`.

SPEC: {"username": ..., "password": ..., "host_key": PATH}. Prints the port once it listens.
The protocol side (SSH subsystem, RFC 6242 framing, hello, sessions, locks, rpc-errors) is the
`netconf` package's server; the datastores are ours: a running and a candidate configuration,
`edit-config` merging into one, `commit` copying candidate to running.

Two adjustments to that package, both at its edges: it binds every address (`::`), so the
listening socket is made here on 127.0.0.1; and its SSH helper imports paramiko's DSS key
module, which paramiko 4 dropped (DSS keys are never used here).
"""

from __future__ import annotations

import copy
import json
import socket
import sys
import threading
import types
from typing import Any

import paramiko

if not hasattr(paramiko, "dsskey"):
    _dss = types.ModuleType("paramiko.dsskey")
    _dss.DSSKey = paramiko.Ed25519Key  # type: ignore[attr-defined]
    sys.modules["paramiko.dsskey"] = _dss

import sshutil.server
from lxml import etree
from netconf import error as ncerror
from netconf import server as ncserver
from netconf import util

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
INITIAL = (
    f'<data xmlns="{NC}"><system xmlns="urn:example:system"><hostname>nc1</hostname>'
    "<location>lab</location></system></data>"
)


class Datastores:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = etree.fromstring(INITIAL)
        self.candidate = copy.deepcopy(self.running)

    def nc_append_capabilities(self, capabilities: Any) -> None:
        util.subelm(
            capabilities, "capability"
        ).text = "urn:ietf:params:netconf:capability:candidate:1.0"

    def _reply(self, store: Any) -> Any:
        with self.lock:
            return copy.deepcopy(store)

    def rpc_get(self, session: Any, rpc: Any, filter_or_none: Any) -> Any:
        return self._reply(self.running)

    def rpc_get_config(self, session: Any, rpc: Any, source: Any, filter_or_none: Any) -> Any:
        names = [child.tag.split("}")[-1] for child in source]
        return self._reply(self.candidate if names == ["candidate"] else self.running)

    def rpc_edit_config(self, session: Any, rpc: Any, *params: Any) -> Any:
        method = rpc[0]
        target = method.find(f"{{{NC}}}target")
        config = method.find(f"{{{NC}}}config")
        if target is None or config is None:
            raise ncerror.MissingElementProtoError(rpc, util.qname("nc:config"))
        name = target[0].tag.split("}")[-1]
        with self.lock:
            store = self.candidate if name == "candidate" else self.running
            for element in config:
                _merge(store, element)
        return etree.Element("ok")

    def rpc_commit(self, session: Any, rpc: Any, *params: Any) -> Any:
        with self.lock:
            self.running = copy.deepcopy(self.candidate)
        return etree.Element("ok")

    def rpc_discard_changes(self, session: Any, rpc: Any, *params: Any) -> Any:
        with self.lock:
            self.candidate = copy.deepcopy(self.running)
        return etree.Element("ok")


def _merge(parent: Any, element: Any) -> None:
    """RFC 6241 `merge` for leaves and containers matched by tag."""
    existing = parent.find(element.tag)
    if existing is None:
        parent.append(copy.deepcopy(element))
        return
    if len(element) == 0:
        existing.text = element.text
        return
    for child in element:
        _merge(existing, child)


class LoopbackServer(ncserver.NetconfSSHServer):  # type: ignore[misc]
    """NetconfSSHServer's state, set up as its __init__ does, listening on 127.0.0.1 only."""

    def __init__(self, controller: Any, methods: Any, host_key: Any) -> None:
        self.server_methods = methods
        self.session_id = 1
        self.session_locks_lock = threading.Lock()
        self.session_locks = {"running": 0, "candidate": 0}
        self.server_ctl = controller
        self.server_socket_class = sshutil.server.SSHServerSocket
        self.server_session_class = ncserver.NetconfServerSession
        self.extra_args = None
        self.debug = False
        self.host_key = host_key
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self.ports = {socket.AF_INET: self.port}
        self.close_wsocket, self.close_rsocket = socket.socketpair()
        self.lock = threading.Lock()
        self.sockets: list[Any] = []
        self.thread = threading.Thread(
            target=self._accept_socket_thread, args=[listener], daemon=True
        )
        self.thread.start()

    def __del__(self) -> None:  # the package logs an ERROR line here
        pass


def main() -> None:
    spec = json.loads(sys.argv[1])
    controller = ncserver.SSHUserPassController(
        username=spec["username"], password=spec["password"]
    )
    key = paramiko.Ed25519Key.from_private_key_file(spec["host_key"])
    server = LoopbackServer(controller, Datastores(), key)
    print(server.port, flush=True)
    sys.stdin.read()
    server.close()


if __name__ == "__main__":
    main()
