"""Event producers: the eBPF syscall sensor (`syscall/`), the CloudTrail collector
(`cloudtrail/`), the Kubernetes audit webhook (`k8s_audit/`), the libscap capture reader
(`scap/`), and record/replay. They publish to Kafka through one publisher and never import
Faust; `base.py` holds what they share (the Sensor shape and its runner)."""
