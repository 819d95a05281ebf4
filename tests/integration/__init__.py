"""Integration tests: real Apache Kafka (see falconet.broker) and real peers."""
