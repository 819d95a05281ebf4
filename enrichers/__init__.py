"""Enrichment layers (process, container runtime, Kubernetes, cloud account, identity).
(Built by the enrichment issue; this package only reserves the namespace today.)"""
