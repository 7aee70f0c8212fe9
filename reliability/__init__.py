"""The reliability suite: does storefirst lose, strand or double-run requests under load, processor
crashes, storage faults and poison records? Each scenario starts its own local stack (devserver's
launcher: the database host, the fault proxy if it injects faults, `chalice local`), sends a seeded
workload over HTTP, then checks every request by id against the table and against a durable record
of each business-logic run.

    python -m reliability <load|crashes|throttle|outage|poison|all> --backend moto|dynamodb-local|both
"""
