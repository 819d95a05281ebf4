"""Event producers: the eBPF syscall sensor, the CloudTrail collector, the Kubernetes audit
webhook, metadata watchers, and record/replay.  They publish to Kafka and never import Faust.
(Built by the sensors issue; this package only reserves the namespace today.)"""
