"""Governance: access policy and masks, the governed store, audit and lineage.

It wraps storage (:mod:`lakehouse.io`) and never the other way round: the governed store
authorizes, delegates to a Delta store, masks reads and publishes events that the audit log
and the lineage recorder subscribe to.
"""
