"""The control plane's use cases: what a caller may do with projects, plans, collections, runs
and engines, and what the control plane does with what it hears from the stream.

Routes (:mod:`control.api`) and the CLI call these; these hold the rules, talk SQL through the
session they are given, and reach the other adapters (files, scheduler, Kafka, ClickHouse) through
the objects passed in. Everything a caller asks for is found on the caller's behalf
(:mod:`control.services.access`): what is not theirs does not exist for them.
"""
