"""Cloud and identity metadata publishers (``falconet sensor cloud-meta``).

Three publishers, each feeding one compacted metadata table (docs/sensors/cloud-meta.md):

* node mode (``--imds``): the EC2 instance identity of the node from IMDSv2 →
  ``meta.instances.v1``, keyed by the node name (the ``host`` of syscall events);
* accounts (``--accounts``): AWS Organizations and/or a YAML inventory →
  ``meta.accounts.v1``, keyed by the account id;
* identities (``--identities``): IAM users and roles with their owner tags →
  ``meta.identities.v1``, keyed by the principal ARN (plus one alias per role, so an
  assumed-role session resolves to its role: :mod:`.join`).

:mod:`.join` holds the pure functions the enrichers use to join events with these tables.
"""
