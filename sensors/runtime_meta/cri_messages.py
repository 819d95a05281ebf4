"""The ``runtime.v1`` messages of the CRI API this publisher sends and reads, as
:mod:`.protowire` field tables.

Field numbers and names follow ``pkg/apis/runtime/v1/api.proto`` of k8s.io/cri-api
(checked against v0.30.0); only the fields the publisher uses are listed, the rest are
skipped when decoding. To add one, copy its number from that file (download the module
zip from the Go module proxy: ``k8s.io/cri-api/@v/<version>.zip``); the numbers never
change within ``runtime.v1``.
"""

from __future__ import annotations

from .protowire import Field, Message

SERVICE = "runtime.v1.RuntimeService"

# ContainerState
CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED, CONTAINER_UNKNOWN = 0, 1, 2, 3
# ContainerEventType
CREATED_EVENT, STARTED_EVENT, STOPPED_EVENT, DELETED_EVENT = 0, 1, 2, 3
# NamespaceMode
NS_POD, NS_CONTAINER, NS_NODE, NS_TARGET = 0, 1, 2, 3
# MountPropagation → the names the container plugin of Falco reports
PROPAGATION = {0: "private", 1: "rslave", 2: "rshared"}
# Protocol
PROTOCOLS = {0: "tcp", 1: "udp", 2: "sctp"}

VERSION_REQUEST: Message = {1: Field("version", "string")}
VERSION_RESPONSE: Message = {
    1: Field("version", "string"),
    2: Field("runtime_name", "string"),
    3: Field("runtime_version", "string"),
    4: Field("runtime_api_version", "string"),
}

CONTAINER_METADATA: Message = {1: Field("name", "string"), 2: Field("attempt", "int")}
IMAGE_SPEC: Message = {
    1: Field("image", "string"),
    2: Field("annotations", "map"),
    18: Field("user_specified_image", "string"),
}
MOUNT: Message = {
    1: Field("container_path", "string"),
    2: Field("host_path", "string"),
    3: Field("readonly", "bool"),
    4: Field("selinux_relabel", "bool"),
    5: Field("propagation", "int"),
}

CONTAINER_STATE_VALUE: Message = {1: Field("state", "int")}
CONTAINER_FILTER: Message = {
    1: Field("id", "string"),
    2: Field("state", "message", message=CONTAINER_STATE_VALUE),
    3: Field("pod_sandbox_id", "string"),
    4: Field("label_selector", "map"),
}
LIST_CONTAINERS_REQUEST: Message = {1: Field("filter", "message", message=CONTAINER_FILTER)}
CONTAINER: Message = {
    1: Field("id", "string"),
    2: Field("pod_sandbox_id", "string"),
    3: Field("metadata", "message", message=CONTAINER_METADATA),
    4: Field("image", "message", message=IMAGE_SPEC),
    5: Field("image_ref", "string"),
    6: Field("state", "int"),
    7: Field("created_at", "int64"),
    8: Field("labels", "map"),
    9: Field("annotations", "map"),
    10: Field("image_id", "string"),
}
LIST_CONTAINERS_RESPONSE: Message = {
    1: Field("containers", "message", repeated=True, message=CONTAINER)
}

CONTAINER_STATUS_REQUEST: Message = {
    1: Field("container_id", "string"),
    2: Field("verbose", "bool"),
}
CONTAINER_STATUS: Message = {
    1: Field("id", "string"),
    2: Field("metadata", "message", message=CONTAINER_METADATA),
    3: Field("state", "int"),
    4: Field("created_at", "int64"),
    5: Field("started_at", "int64"),
    6: Field("finished_at", "int64"),
    7: Field("exit_code", "int"),
    8: Field("image", "message", message=IMAGE_SPEC),
    9: Field("image_ref", "string"),
    10: Field("reason", "string"),
    11: Field("message", "string"),
    12: Field("labels", "map"),
    13: Field("annotations", "map"),
    14: Field("mounts", "message", repeated=True, message=MOUNT),
    15: Field("log_path", "string"),
    17: Field("image_id", "string"),
}
CONTAINER_STATUS_RESPONSE: Message = {
    1: Field("status", "message", message=CONTAINER_STATUS),
    2: Field("info", "map"),
}

POD_SANDBOX_METADATA: Message = {
    1: Field("name", "string"),
    2: Field("uid", "string"),
    3: Field("namespace", "string"),
    4: Field("attempt", "int"),
}
POD_IP: Message = {1: Field("ip", "string")}
POD_SANDBOX_NETWORK_STATUS: Message = {
    1: Field("ip", "string"),
    2: Field("additional_ips", "message", repeated=True, message=POD_IP),
}
NAMESPACE_OPTION: Message = {
    1: Field("network", "int"),
    2: Field("pid", "int"),
    3: Field("ipc", "int"),
    4: Field("target_id", "string"),
}
NAMESPACE: Message = {2: Field("options", "message", message=NAMESPACE_OPTION)}
LINUX_POD_SANDBOX_STATUS: Message = {1: Field("namespaces", "message", message=NAMESPACE)}
POD_SANDBOX_STATUS: Message = {
    1: Field("id", "string"),
    2: Field("metadata", "message", message=POD_SANDBOX_METADATA),
    3: Field("state", "int"),
    4: Field("created_at", "int64"),
    5: Field("network", "message", message=POD_SANDBOX_NETWORK_STATUS),
    6: Field("linux", "message", message=LINUX_POD_SANDBOX_STATUS),
    7: Field("labels", "map"),
    8: Field("annotations", "map"),
    9: Field("runtime_handler", "string"),
}
POD_SANDBOX_STATUS_REQUEST: Message = {
    1: Field("pod_sandbox_id", "string"),
    2: Field("verbose", "bool"),
}
POD_SANDBOX_STATUS_RESPONSE: Message = {
    1: Field("status", "message", message=POD_SANDBOX_STATUS),
    2: Field("info", "map"),
    3: Field("containers_statuses", "message", repeated=True, message=CONTAINER_STATUS),
    4: Field("timestamp", "int64"),
}

POD_SANDBOX_FILTER: Message = {1: Field("id", "string"), 3: Field("label_selector", "map")}
LIST_POD_SANDBOX_REQUEST: Message = {1: Field("filter", "message", message=POD_SANDBOX_FILTER)}
POD_SANDBOX: Message = {
    1: Field("id", "string"),
    2: Field("metadata", "message", message=POD_SANDBOX_METADATA),
    3: Field("state", "int"),
    4: Field("created_at", "int64"),
    5: Field("labels", "map"),
    6: Field("annotations", "map"),
    7: Field("runtime_handler", "string"),
}
LIST_POD_SANDBOX_RESPONSE: Message = {
    1: Field("items", "message", repeated=True, message=POD_SANDBOX)
}

GET_EVENTS_REQUEST: Message = {}
CONTAINER_EVENT_RESPONSE: Message = {
    1: Field("container_id", "string"),
    2: Field("container_event_type", "int"),
    3: Field("created_at", "int64"),
    4: Field("pod_sandbox_status", "message", message=POD_SANDBOX_STATUS),
    5: Field("containers_statuses", "message", repeated=True, message=CONTAINER_STATUS),
}

#: method → (request table, response table, server streaming)
METHODS: dict[str, tuple[Message, Message, bool]] = {
    "Version": (VERSION_REQUEST, VERSION_RESPONSE, False),
    "ListContainers": (LIST_CONTAINERS_REQUEST, LIST_CONTAINERS_RESPONSE, False),
    "ContainerStatus": (CONTAINER_STATUS_REQUEST, CONTAINER_STATUS_RESPONSE, False),
    "ListPodSandbox": (LIST_POD_SANDBOX_REQUEST, LIST_POD_SANDBOX_RESPONSE, False),
    "PodSandboxStatus": (POD_SANDBOX_STATUS_REQUEST, POD_SANDBOX_STATUS_RESPONSE, False),
    "GetContainerEvents": (GET_EVENTS_REQUEST, CONTAINER_EVENT_RESPONSE, True),
}
