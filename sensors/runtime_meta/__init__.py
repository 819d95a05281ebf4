"""Container runtime metadata publisher (`falconet sensor runtime-meta`): the containers of
one node from Docker (Engine API socket) or containerd/CRI-O (CRI gRPC API), published to
the compacted ``meta.containers.v1`` topic keyed by the 12-character container id
(docs/sensors/runtime-meta.md)."""
