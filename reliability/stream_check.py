"""Reads the table's stream after a scenario and finds the records a reader cannot deliver.

A DynamoDB stream's sequence numbers increase within a shard, and the local runner (like any
reader that resumes "after sequence number N") skips a record whose number is not above the
last one it read. moto 5.2.5 breaks the rule under concurrent writes: `StreamShard.add` computes
`len(items) + start` and appends in two steps without a lock, so two records can get the same
number, or a later record a lower one; the runner then never delivers it, and an INSERT among
them leaves its request PENDING (this suite's first 10,000-request run on moto stranded 3 that
way). devserver/moto_server.py now runs moto's DynamoDB calls one at a time; this check keeps
verifying, on both backends, that no record of the run was numbered out of order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Set

from chalicelib.ownership import public_id

MAX_PAGES = 10_000  # a bound: 1,000 records a page


@dataclass
class StreamFindings:
    records: int = 0
    out_of_order: int = 0  # records whose sequence number is not above every earlier one
    skipped_inserts: Set[str] = field(default_factory=set)  # request ids of INSERTs among them


def check_stream(dynamodb: Any, streams: Any, table: str) -> StreamFindings:
    found = StreamFindings()
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shards: List[str] = []
    start = None
    for _ in range(100):
        description = streams.describe_stream(StreamArn=arn, **({"ExclusiveStartShardId": start} if start else {}))
        shards += [s["ShardId"] for s in description["StreamDescription"]["Shards"]]
        start = description["StreamDescription"].get("LastEvaluatedShardId")
        if not start:
            break
    for shard in shards:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        highest, seen = -1, set()
        for _ in range(MAX_PAGES):
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in page["Records"]:
                if record["eventID"] in seen:
                    continue  # moto's next iterator starts after the page's highest number: re-reads
                seen.add(record["eventID"])
                found.records += 1
                number = int(record["dynamodb"]["SequenceNumber"])
                if number <= highest:
                    found.out_of_order += 1
                    if record["eventName"] == "INSERT":
                        found.skipped_inserts.add(public_id(record["dynamodb"]["Keys"]["id"]["S"]))
                highest = max(highest, number)
            iterator = page.get("NextShardIterator")
            if not page["Records"] or not iterator:
                break
    return found
