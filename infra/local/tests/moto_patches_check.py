"""Checks infra/local/src/moto_patches.py against moto itself (run by moto_patches.rs).

1. Index queries answered from the maintained index entries agree with a scan of the table
   after random puts, updates, deletes, batch writes and transactions (some cancelled).
2. The directly written DynamoDB answers parse to the same JSON as moto's serialiser writes.
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


if __name__ == "__main__":
    checks = sum(index_queries_agree_with_a_scan(seed) for seed in (1, 2, 3))
    compared = answers_parse_as_moto_writes_them()
    print(f"moto patches: {checks} index queries agreed with a scan, {compared} answers parsed alike")
