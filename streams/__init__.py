"""The Faust stream processors: topics, tables, one agent per source, DLQ.
(Built by the Kafka backbone issue; this package only reserves the namespace today.)"""
