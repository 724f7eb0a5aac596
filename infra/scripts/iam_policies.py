#!/usr/bin/env python3
"""Prints every function's IAM policy as AWS will hold it: template.yaml through the SAM
translator (aws-sam-translator, the library `sam deploy` runs), so policy templates, the
roles SAM generates and the managed policies it attaches for event sources are all expanded.

Why: moto authorises every call, so a function missing a grant fails only in AWS. The e2e test
`iam::every_aws_call_is_granted_to_the_function_that_makes_it` records each function's AWS calls
on the local stack and checks them against this output.

Output (stdout, JSON):
  {"region": R, "account": A,
   "functions": {LogicalId: [{"effect": "Allow"|"Deny", "actions": [...],
                              "resources": [...], "source": "inline" | <managed policy ARN>}]}}
Intrinsics resolve to placeholder ARNs in region R and account A: `!GetAtt Table.Arn` is
arn:aws:dynamodb:R:A:table/Table, a queue's Arn arn:aws:sqs:R:A:<LogicalId>, `!Ref` of a secret
arn:aws:secretsmanager:R:A:secret:<LogicalId>; `!Sub` substitutes the same values.

Usage: iam_policies.py [template.yaml]
"""

import json
import os
import re
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REGION = "us-east-1"
ACCOUNT = "123456789012"

# The AWS managed policies SAM attaches, as AWS publishes them (only actions matter here). An
# unknown one is an error, so a new attachment is looked at rather than silently granted.
MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        [
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries",
        ]
    ],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    ],
}


class NoManagedPolicyLookups:
    """The translator asks IAM for managed policy names; the template uses none by name."""

    def load(self):
        return {}


def arn_of(logical_id, resource_type):
    kinds = {
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical_id}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_id}",
        "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{logical_id}",
    }
    return kinds.get(resource_type, f"arn:aws:placeholder:{REGION}:{ACCOUNT}:{logical_id}")


def ref_of(name, resources, parameters):
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
    if name in pseudo:
        return pseudo[name]
    if name in parameters:
        return str(parameters[name].get("Default", ""))
    kind = resources[name]["Type"]
    if kind in ("AWS::SecretsManager::Secret", "AWS::SNS::Topic"):
        return arn_of(name, kind)  # Ref of these is their ARN
    if kind == "AWS::SQS::Queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
    return name  # a table's (and most resources') Ref is its name


def condition(name, doc):
    return evaluate(doc.get("Conditions", {})[name], doc)


def evaluate(value, doc):
    """Resolves the intrinsics a policy may hold, with parameters at their defaults."""
    resources, parameters = doc["Resources"], doc.get("Parameters", {})
    if isinstance(value, list):
        return [evaluate(v, doc) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {k: evaluate(v, doc) for k, v in value.items()}
    (fn, arg), = value.items()
    if fn == "Ref":
        return ref_of(arg, resources, parameters)
    if fn == "Fn::GetAtt":
        logical_id, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        if attr != "Arn":
            raise SystemExit(f"unsupported GetAtt {logical_id}.{attr} in a policy")
        return arn_of(logical_id, resources[logical_id]["Type"])
    if fn == "Fn::Sub":
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def sub(m):
            name = m.group(1)
            if name in extra:
                return str(evaluate(extra[name], doc))
            if "." in name:
                return str(evaluate({"Fn::GetAtt": name.split(".", 1)}, doc))
            return str(ref_of(name, resources, parameters))

        return re.sub(r"\$\{([^}!]+)\}", sub, text)
    if fn == "Fn::If":
        return evaluate(arg[1] if condition(arg[0], doc) else arg[2], doc)
    if fn == "Fn::Equals":
        a, b = evaluate(arg, doc)
        return a == b
    if fn == "Fn::Not":
        return not evaluate(arg[0], doc)
    if fn == "Fn::And":
        return all(evaluate(arg, doc))
    if fn == "Fn::Or":
        return any(evaluate(arg, doc))
    if fn == "Fn::Join":
        return arg[0].join(str(v) for v in evaluate(arg[1], doc))
    return {fn: evaluate(arg, doc)}


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements_of(role, doc):
    out = []
    for policy in role["Properties"].get("Policies", []):
        for st in as_list(evaluate(policy["PolicyDocument"], doc)["Statement"]):
            if "NotAction" in st or "NotResource" in st:
                raise SystemExit(f"NotAction/NotResource is not supported: {st}")
            out.append({
                "effect": st["Effect"],
                "actions": as_list(st["Action"]),
                "resources": as_list(st.get("Resource", "*")),
                "source": "inline",
            })
    for arn in as_list(evaluate(role["Properties"].get("ManagedPolicyArns", []), doc)):
        if arn not in MANAGED:
            raise SystemExit(f"unknown managed policy {arn}: add its actions to MANAGED")
        for actions in MANAGED[arn]:
            out.append({"effect": "Allow", "actions": actions, "resources": ["*"], "source": arn})
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../template.yaml")
    with open(path, encoding="utf-8") as f:
        sam = yaml_parse(f.read())
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # What `sam package` does before deploying; the translator wants an S3 location.
            resource["Properties"]["CodeUri"] = "s3://bucket/key"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    doc = transform(sam, {}, NoManagedPolicyLookups())
    resources = doc["Resources"]
    functions = {}
    for logical_id, resource in sorted(resources.items()):
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resource["Properties"]["Role"]
        role_id = role["Fn::GetAtt"][0] if isinstance(role, dict) and "Fn::GetAtt" in role else None
        if role_id is None or role_id not in resources:
            raise SystemExit(f"{logical_id}: its role is not one of the template's ({role})")
        functions[logical_id] = statements_of(resources[role_id], doc)
    json.dump({"region": REGION, "account": ACCOUNT, "functions": functions}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
