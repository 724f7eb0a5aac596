#!/usr/bin/env python3
"""Checks the OpenAPI document and real responses against it.

Usage: openapi_check.py DOCUMENT.json [RESPONSES.jsonl]

1. The document must be a valid OpenAPI 3.1 document (openapi-spec-validator).
2. Each line of RESPONSES is {"operation": operationId, "status": int, "body": json|null}: a real
   response of the local stack. Its status must be one the operation documents, and its body must
   validate against that response's schema (JSON Schema 2020-12, with additionalProperties: false
   in the document, so an undocumented field fails). Prints every failure; exit 1 on any.
"""
import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012


def main() -> int:
    document = json.load(open(sys.argv[1]))
    validate(document)
    print("openapi_check: the document is valid OpenAPI", document["openapi"])
    if len(sys.argv) < 3:
        return 0
    registry = Registry().with_resource("urn:puck:openapi", Resource.from_contents(document, default_specification=DRAFT202012))
    # operationId -> (the operation, its JSON pointer in the document)
    operations = {
        op["operationId"]: (op, f"/paths/{escape(path)}/{method}")
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    failures, checked = [], 0
    for line in open(sys.argv[2]):
        record = json.loads(line)
        where = f'{record["operation"]} {record["status"]}'
        if record["operation"] not in operations:
            failures.append(f"{where}: no such operation")
            continue
        op, location = operations[record["operation"]]
        response = op["responses"].get(str(record["status"]))
        if response is None:
            failures.append(f"{where}: status not documented (documented: {sorted(op['responses'])})")
            continue
        location = f"{location}/responses/{record['status']}"
        if "$ref" in response:
            location = response["$ref"].lstrip("#")
            response = resolve(document, response["$ref"])
        content = response.get("content")
        body = record["body"]
        if content is None:
            if body is not None:
                failures.append(f"{where}: documented without a body, got {body!r:.200}")
            checked += 1
            continue
        media = content.get("application/json")
        if media is None:
            checked += 1
            continue
        schema = {"$ref": f"urn:puck:openapi#{location}/content/application~1json/schema"}
        validator = Draft202012Validator(schema, registry=registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        for e in errors:
            failures.append(f"{where}: {'/'.join(map(str, e.path)) or '(body)'}: {e.message}")
        checked += 1
    for f in failures:
        print("openapi_check: FAIL", f)
    print(f"openapi_check: {checked} responses checked, {len(failures)} failures")
    return 1 if failures else 0


def escape(token: str) -> str:
    """A JSON pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def resolve(document: dict, ref: str) -> dict:
    node = document
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


if __name__ == "__main__":
    sys.exit(main())
