"""Kubernetes metadata publisher (`falconet sensor k8s-meta`): list+watch of pods, namespaces,
nodes, ReplicaSets and Jobs through the API server, published to the compacted
``meta.pods.v1``, ``meta.containers.v1``, ``meta.namespaces.v1`` and ``meta.nodes.v1``
topics (docs/sensors/k8s-meta.md)."""
