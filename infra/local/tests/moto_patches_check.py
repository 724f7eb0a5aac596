"""Checks infra/local/src/moto_patches.py against moto itself (run by moto_patches.rs).

1. Index queries answered from the maintained index entries agree with a scan of the table
   after random puts, updates, deletes, batch writes and transactions (some cancelled).
2. Base-table queries with sort-key conditions (=, <, <=, >, >=, BETWEEN, begins_with; string and
   number keys; paged, both directions, with filters, projections and counts) answer exactly what
   moto's own Query answers.
3. The directly written DynamoDB answers parse to the same JSON as moto's serialiser writes.
4. On a moto other than the pinned one the patches refuse to load.
5. A standard queue serves a quiet message group ahead of one with many messages in flight (SQS
   fair queues); a FIFO queue and a queue without groups keep moto's order.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.dynamodb.responses import DynamoResult  # noqa: E402

TABLE = dict(
    TableName="t",
    BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ["pk", "sk", "g", "h"]]
    + [{"AttributeName": "d", "AttributeType": "N"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[
        {
            "IndexName": "idx",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "d", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        },
        {
            "IndexName": "idy",
            "KeySchema": [{"AttributeName": "h", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        },
    ],
)


def index_queries_agree_with_a_scan(seed):
    rnd = random.Random(seed)
    with mock_aws():
        import moto_patches  # noqa: F401  (patches moto as the local stack does)

        c = boto3.client("dynamodb", region_name="us-east-1")
        c.create_table(**TABLE)

        def key():
            return {"pk": {"S": f"P{rnd.randrange(8)}"}, "sk": {"S": f"{rnd.randrange(30):03}"}}

        def indexed(k, g=None, d=None):
            return dict(k, g={"S": g or f"G{rnd.randrange(4)}"}, d={"N": str(d if d is not None else rnd.randrange(100))})

        checks = 0
        for step in range(1200):
            op = rnd.random()
            try:
                if op < 0.3:
                    item = indexed(key()) if rnd.random() < 0.7 else key()
                    if rnd.random() < 0.5:
                        item["h"] = {"S": f"H{rnd.randrange(3)}"}
                    c.put_item(TableName="t", Item=item)
                elif op < 0.55:
                    r = rnd.random()
                    if r < 0.4:
                        values = {":g": {"S": f"G{rnd.randrange(4)}"}, ":d": {"N": str(rnd.randrange(100))}}
                        c.update_item(TableName="t", Key=key(), UpdateExpression="SET g = :g, d = :d", ExpressionAttributeValues=values)
                    elif r < 0.7:
                        c.update_item(TableName="t", Key=key(), UpdateExpression="REMOVE g, d")
                    else:
                        c.update_item(
                            TableName="t",
                            Key=key(),
                            UpdateExpression="SET h = :h",
                            ConditionExpression="attribute_exists(pk)",
                            ExpressionAttributeValues={":h": {"S": f"H{rnd.randrange(3)}"}},
                        )
                elif op < 0.65:
                    c.delete_item(TableName="t", Key=key())
                elif op < 0.75:
                    requests, seen = [], set()
                    for _ in range(rnd.randrange(1, 6)):
                        k = key()
                        if (k["pk"]["S"], k["sk"]["S"]) in seen:
                            continue
                        seen.add((k["pk"]["S"], k["sk"]["S"]))
                        if rnd.random() < 0.5:
                            requests.append({"PutRequest": {"Item": indexed(k)}})
                        else:
                            requests.append({"DeleteRequest": {"Key": k}})
                    c.batch_write_item(RequestItems={"t": requests})
                elif op < 0.85:
                    k1, k2 = key(), key()
                    if k1 == k2:
                        continue
                    update = {
                        "TableName": "t",
                        "Key": k2,
                        "UpdateExpression": "SET g = :g, d = :d",
                        "ExpressionAttributeValues": {":g": {"S": "G2"}, ":d": {"N": "7"}},
                    }
                    if rnd.random() < 0.5:
                        update["ConditionExpression"] = "attribute_exists(nope)"  # cancels the transaction
                    c.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": indexed(k1, "G1", 5)}}, {"Update": update}])
                else:
                    for index, attr, values in (("idx", "g", ["G0", "G1", "G2", "G3"]), ("idy", "h", ["H0", "H1", "H2"])):
                        v = rnd.choice(values)
                        got, page = [], {}
                        while True:
                            r = c.query(
                                TableName="t",
                                IndexName=index,
                                KeyConditionExpression="#a = :v",
                                ExpressionAttributeNames={"#a": attr},
                                ExpressionAttributeValues={":v": {"S": v}},
                                Limit=7,
                                **page,
                            )
                            got += [(i["pk"]["S"], i["sk"]["S"]) for i in r["Items"]]
                            if "LastEvaluatedKey" not in r:
                                break
                            page = {"ExclusiveStartKey": r["LastEvaluatedKey"]}
                        want = [
                            (i["pk"]["S"], i["sk"]["S"])
                            for i in c.scan(TableName="t")["Items"]
                            if i.get(attr, {}).get("S") == v and (index != "idx" or "d" in i)
                        ]
                        assert sorted(got) == sorted(want), f"seed {seed} step {step} {index} {v}: {sorted(got)} != {sorted(want)}"
                        checks += 1
            except (c.exceptions.TransactionCanceledException, c.exceptions.ConditionalCheckFailedException):
                pass
        assert checks > 100, checks
        return checks


NUMBERED = dict(
    TableName="n",
    BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
)

# Sort-key conditions of a base-table query, with how many values each takes.
SORT_KEY_CONDITIONS = [
    ("", 0),
    ("AND sk = :a", 1),
    ("AND sk < :a", 1),
    ("AND sk <= :a", 1),
    ("AND sk > :a", 1),
    ("AND sk >= :a", 1),
    ("AND sk BETWEEN :a AND :b", 2),
    ("AND begins_with(sk, :a)", 1),
]


def _as_moto_answers(fn):
    """Runs fn with moto's own Table.query and Table.all_items in place of the patched ones."""
    import moto_patches
    from moto.dynamodb.models.table import Table

    patched = (Table.query, Table.all_items)
    Table.query, Table.all_items = moto_patches._query, moto_patches._all_items
    try:
        return fn()
    finally:
        Table.query, Table.all_items = patched


def _all_pages(c, query):
    """Every page of a query: each answer without its request metadata, or the error's code."""
    pages, start = [], {}
    while len(pages) < 100:
        try:
            r = c.query(**query, **start)
        except c.exceptions.ClientError as e:
            return pages + [e.response["Error"]["Code"]]
        r.pop("ResponseMetadata", None)
        pages.append(r)
        if "LastEvaluatedKey" not in r:
            return pages
        start = {"ExclusiveStartKey": r["LastEvaluatedKey"]}
    raise AssertionError(f"no end to the pages of {query}")


def _sort_key_value(rnd, numbered):
    if numbered:
        return {"N": rnd.choice(["-3", "0", "1.5", "1.50", "2", "10", "15.25", str(rnd.randrange(-5, 40))])}
    return {"S": rnd.choice(["", "A", "B#", "A#01", "C#3"]) + (f"{rnd.randrange(40):03}" if rnd.random() < 0.5 else "")}


def _random_query(rnd, table, numbered):
    condition, values = rnd.choice([c for c in SORT_KEY_CONDITIONS if not (numbered and "begins_with" in c[0])])
    bounds = sorted((_sort_key_value(rnd, numbered) for _ in range(values)), key=lambda v: float(v["N"]) if numbered else v["S"])
    names = dict(zip([":a", ":b"], bounds))
    query = dict(
        TableName=table,
        KeyConditionExpression=f"pk = :p {condition}",
        ExpressionAttributeValues={":p": {"S": f"P{rnd.randrange(5)}"}, **names},
        ScanIndexForward=rnd.random() < 0.5,
    )
    if rnd.random() < 0.6:
        query["Limit"] = rnd.choice([1, 2, 3, 7])
    extra = rnd.random()
    if extra < 0.2:
        query["FilterExpression"] = "attribute_exists(g)"
    elif extra < 0.3:
        query["ProjectionExpression"] = "sk, g"
    elif extra < 0.4:
        query["Select"] = "COUNT"
    return query


def base_table_queries_agree_with_moto(seed):
    """Base-table queries with every kind of sort-key condition, paged, both directions, answer
    what moto's own Query answers, after random puts and deletes."""
    rnd = random.Random(seed)
    with mock_aws():
        import moto_patches  # noqa: F401

        c = boto3.client("dynamodb", region_name="us-east-1")
        c.create_table(**TABLE)
        c.create_table(**NUMBERED)
        checks = 0
        for step in range(700):
            table, numbered = rnd.choice([("t", False), ("n", True)])
            key = {"pk": {"S": f"P{rnd.randrange(5)}"}, "sk": _sort_key_value(rnd, numbered)}
            if numbered is False and key["sk"]["S"] == "":
                continue
            op = rnd.random()
            if op < 0.45:
                item = dict(key, g={"S": "x" * rnd.randrange(1, 40)}) if rnd.random() < 0.5 else key
                c.put_item(TableName=table, Item=item)
            elif op < 0.55:
                c.delete_item(TableName=table, Key=key)
            else:
                query = _random_query(rnd, table, numbered)
                ours = _all_pages(c, query)
                moto = _as_moto_answers(lambda: _all_pages(c, query))
                assert ours == moto, f"seed {seed} step {step} {query}:\n ours {ours}\n moto {moto}"
                checks += 1
        assert checks > 250, checks
        return checks


def refuses_another_moto():
    """On a moto other than the one they were written for, the patches refuse to load."""
    import importlib

    import moto

    real = moto.__version__
    sys.modules.pop("moto_patches", None)
    moto.__version__ = "5.0.0"
    try:
        importlib.import_module("moto_patches")
    except RuntimeError as e:
        assert f"refuses moto 5.0.0: it replaces private internals of moto {real}" in str(e), str(e)
    else:
        raise AssertionError("moto_patches.py loaded on moto 5.0.0")
    finally:
        moto.__version__ = real
        sys.modules.pop("moto_patches", None)
    import moto_patches

    assert moto_patches.MOTO_VERSION == real


def answers_parse_as_moto_writes_them():
    import moto_patches

    captured = []
    patched = DynamoResult.execute_result

    def spy(self, context):
        captured.append((context, self.result))
        return moto_patches._execute_result(self, context)

    DynamoResult.execute_result = spy
    try:
        with mock_aws():
            c = boto3.client("dynamodb", region_name="us-east-1")
            c.create_table(**TABLE)
            k = {"pk": {"S": "a"}, "sk": {"S": "1"}}
            item = dict(
                k,
                b={"B": b"\x00\xffxyz"},
                n={"N": "1.50"},
                l={"L": [{"S": "x"}, {"N": "2"}, {"NULL": True}]},
                m={"M": {"k": {"BOOL": False}, "bs": {"BS": [b"\x01"]}}},
                ss={"SS": ["a", "b"]},
                ns={"NS": ["1", "2"]},
                u={"S": "é\u2028\"<>"},
            )
            c.put_item(TableName="t", Item=item, ReturnConsumedCapacity="TOTAL")
            c.get_item(TableName="t", Key=k, ConsistentRead=True)
            c.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "2"}})
            c.update_item(TableName="t", Key=k, UpdateExpression="SET z = :z", ExpressionAttributeValues={":z": {"N": "3"}}, ReturnValues="ALL_NEW")
            c.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "2"}})
            c.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}}, Limit=1, ScanIndexForward=False)
            c.batch_get_item(RequestItems={"t": {"Keys": [k, {"pk": {"S": "a"}, "sk": {"S": "9"}}]}})
            c.delete_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "2"}}, ReturnValues="ALL_OLD")
            c.scan(TableName="t")
    finally:
        DynamoResult.execute_result = patched
    compared = 0
    for context, result in captured:
        if context.operation_model.name not in moto_patches._ITEM_OPERATIONS:
            continue
        moto_body = moto_patches._execute_result(type("R", (), {"result": result})(), context)[2]
        ours = moto_patches._execute_dynamo_result(type("R", (), {"result": result})(), context)[2]
        assert json.loads(ours) == json.loads(moto_body), f"{context.operation_model.name}: {ours} != {moto_body}"
        compared += 1
    assert compared >= 8, compared
    return compared


def standard_queues_serve_the_quietest_group_first():
    import moto_patches  # noqa: F401

    with mock_aws():
        c = boto3.client("sqs", region_name="us-east-1")
        url = c.create_queue(QueueName="fair")["QueueUrl"]
        for i in range(30):
            c.send_message(QueueUrl=url, MessageBody=f"noisy-{i}", MessageGroupId="noisy")
        # The noisy tenant's first ten are in flight (received, not deleted).
        first = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in first] == [f"noisy-{i}" for i in range(10)]
        c.send_message(QueueUrl=url, MessageBody="quiet-0", MessageGroupId="quiet")
        got = c.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert got[0]["Body"] == "quiet-0", [m["Body"] for m in got]
        assert [m["Body"] for m in got[1:]] == [f"noisy-{i}" for i in range(10, 19)], "send order within a group"
        plain = c.create_queue(QueueName="plain")["QueueUrl"]
        for i in range(3):
            c.send_message(QueueUrl=plain, MessageBody=str(i))
        assert [m["Body"] for m in c.receive_message(QueueUrl=plain, MaxNumberOfMessages=10)["Messages"]] == ["0", "1", "2"]
    return 1


if __name__ == "__main__":
    refuses_another_moto()
    standard_queues_serve_the_quietest_group_first()
    checks = sum(index_queries_agree_with_a_scan(seed) for seed in (1, 2, 3))
    base = sum(base_table_queries_agree_with_moto(seed) for seed in (1, 2, 3))
    compared = answers_parse_as_moto_writes_them()
    print(
        f"moto patches: refused another moto; {checks} index queries agreed with a scan; {base} base-table "
        f"queries with sort-key conditions answered as moto's own; {compared} answers parsed alike"
    )
