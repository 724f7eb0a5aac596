# Speed-ups loaded into each moto the local stack starts (infra/local/src/moto.rs); moto's answers
# are unchanged.
#
# 1. Routing: moto lists its own package directory (listdir + isdir of ~200 entries) on every
#    request to learn its service names; they cannot change while it runs, so the list is kept.
#
# 2. A faster DynamoDB Query on the base table. moto 5.2.5 answers one by sorting every item of
#    the table and keeping those of the asked partition, then computing the size of each
#    partition item even where the sort-key condition rejects it: a cost that grows with the
#    table, so a load run slowed down as it went. Here the query sees only its partition, already
#    narrowed to the run of items the sort-key condition accepts plus the item on either side of
#    it; moto's own code does everything else (pagination, limits, filters, projections). The
#    neighbours keep moto's answer: it checks the limit before the condition, so a page that fills
#    up on the last accepted item still ends with a LastEvaluatedKey when any item follows. (Only
#    its 1 MB page cut can differ, where moto adds the size of rejected items farther away.) An index query on a string partition key reads
#    only that partition of the index, kept up to date from the keys each write changed
#    (`_IndexEntries`); moto checks and sorts the matches by the index and table keys as usual.
#    moto scans and checks every item of the table per index query: the sweeper queries the 64
#    shards of the due index on every run, which took most of moto's CPU once a load run's
#    table held 50,000 items.
#
# 3. One DynamoDB request at a time. moto's DynamoDB is not thread-safe and waitress serves
#    requests on many threads: a TransactWriteItems deep-copies the table while another request
#    inserts into it ("dictionary changed size during iteration", answered 500), and a cancelled
#    transaction restores that copy, wiping writes other requests made meanwhile. DynamoDB makes
#    every call atomic; a lock around each DynamoDB action does the same here. No DynamoDB call
#    waits (unlike SQS long polls), and the GIL serialises moto's Python anyway.
#
# 4. DynamoDB answers written as JSON directly. A DynamoDB result is already a plain dict of
#    attribute values (moto's DynamoResult); moto 5 still walks it against the botocore output
#    shape, about 40 Python calls per attribute, which made serialising a Query page cost more
#    than running it. The answer's bytes parse to the same JSON (binary values base64, as the
#    serialiser writes them); errors keep moto's own serialiser.
# 5. SQS fair queues. On a standard queue, SQS serves the messages of a message group (a
#    tenant: our delivery jobs carry the account) that has few messages in flight ahead of those
#    of a group with many, so one tenant's backlog does not make the others wait. moto 5.2.5
#    accepts MessageGroupId on a standard queue and returns it, but serves visible messages in
#    send order. Here a standard queue's visible messages are offered fewest-in-flight group
#    first (send order within a group and among equals; a message without a group counts as its
#    own); moto's receive does the rest. FIFO queues are untouched.
import base64
import functools
import json
import threading

import moto

# The moto these patches replace private functions of, and were checked against
# (infra/local/tests/moto_patches_check.py). It is the pin of infra/scripts/requirements.txt (the
# test `moto_patches_are_written_for_the_pinned_moto` in moto.rs keeps the two equal), written
# here too so that moving the pin means re-checking the patches. On any other moto they refuse to
# load, and moto does not start, rather than change its answers silently.
MOTO_VERSION = "5.2.5"
if moto.__version__ != MOTO_VERSION:
    raise RuntimeError(
        f"moto_patches.py refuses moto {moto.__version__}: it replaces private internals of moto {MOTO_VERSION}, "
        "the version pinned in infra/scripts/requirements.txt. Reinstall the pin "
        "(infra/scripts/bootstrap-python.sh), or re-check the patches against the new moto "
        "(infra/local/tests/moto_patches_check.py) and move MOTO_VERSION with the pin."
    )

import moto.backends  # noqa: E402
from moto.dynamodb.models.table import Table  # noqa: E402
from moto.dynamodb.responses import DynamoHandler, DynamoResult  # noqa: E402

_partition = threading.local()
_all_items = Table.all_items
_query = Table.query


class _IndexEntries:
    """An index's partitions kept up to date, where moto scans the whole table per index query.

    moto calls `table.stream_shard.add(old, new)` on every put, update and delete (through
    batches and transactions too); a table without a stream has no shard, so this takes its
    place and only notes which keys changed. A query first re-files those keys, then reads one
    partition of the index. A cancelled transaction restores a deep copy of the table, this
    object included, so the entries always match the items they came from.
    """

    def __init__(self):
        self.changed = set()
        # attribute -> value -> key -> item, and attribute -> key -> value (to re-file a key)
        self.partitions = {}
        self.filed_under = {}

    def add(self, old, new):
        for item in (old, new):
            if item is not None:
                self.changed.add((item.hash_key, item.range_key))

    def matches(self, table, attr, value):
        if attr not in self.partitions:
            self.partitions[attr], self.filed_under[attr] = {}, {}
            for key, item in _keyed_items(table):
                self._file(attr, key, item)
        if self.changed:
            for key in self.changed:
                item = _item_at(table, key)
                for attr_name in self.partitions:
                    self._file(attr_name, key, item)
            self.changed.clear()
        return list(self.partitions[attr].get(value, {}).values())

    def _file(self, attr, key, item):
        old = self.filed_under[attr].pop(key, None)
        if old is not None:
            self.partitions[attr][old].pop(key, None)
        v = item.attrs.get(attr) if item is not None else None
        if v is not None and v.type == "S":
            self.partitions[attr].setdefault(v.value, {})[key] = item
            self.filed_under[attr][key] = v.value


def _keyed_items(table):
    for part in table.items.values():
        for item in part.values() if table.range_key_attr else [part]:
            yield (item.hash_key, item.range_key), item


def _item_at(table, key):
    part = table.items.get(key[0])
    if part is None or not table.range_key_attr:
        return part
    return part.get(key[1])


def _index_entries(table):
    """The table's index entries, or None when it has a real stream (moto's own then)."""
    if table.stream_shard is None:
        table.stream_shard = _IndexEntries()
    return table.stream_shard if isinstance(table.stream_shard, _IndexEntries) else None


def _all_items_of_partition(self):
    hint = getattr(_partition, "hint", None)
    if hint is None or hint[0] is not self:
        return _all_items(self)
    kind = hint[1]
    if kind == "index":
        _, _, attr, wanted = hint
        entries = _index_entries(self)
        if entries is not None:
            return entries.matches(self, attr, wanted.value)
    if kind in ("index", "index-any"):
        return [item for _, item in _keyed_items(self)]
    _, _, hash_key, range_comparison, range_values = hint
    found = self.items.get(hash_key)
    if found is None:
        return []
    if not self.range_key_attr:
        return [found]
    items = sorted(found.values(), key=lambda i: i.range_key)
    if not range_comparison:
        return items
    accepted = [n for n, i in enumerate(items) if i.range_key is not None and i.range_key.compare(range_comparison, range_values)]
    if not accepted:
        return []
    # The accepted run and one item on either side (moto's own check rejects those two).
    return items[max(accepted[0] - 1, 0) : accepted[-1] + 2]


def _query_one_partition(self, hash_key, range_comparison, range_values, *args, **kwargs):
    index_name = args[4] if len(args) > 4 else kwargs.get("index_name")
    multi_attribute = kwargs.get("range_key_conditions") and len(kwargs["range_key_conditions"]) > 1
    hash_conditions = kwargs.get("hash_key_conditions") or []
    # String keys compare by value exactly; numbers ("1.5" == "1.50") are left to moto.
    if index_name and len(hash_conditions) == 1 and hash_conditions[0][1].type == "S":
        _partition.hint = (self, "index", hash_conditions[0][0], hash_conditions[0][1])
    elif index_name:
        _partition.hint = (self, "index-any")
    elif hash_key is None or multi_attribute:
        return _query(self, hash_key, range_comparison, range_values, *args, **kwargs)
    else:
        _partition.hint = (self, "partition", hash_key, range_comparison, range_values)
    try:
        return _query(self, hash_key, range_comparison, range_values, *args, **kwargs)
    finally:
        _partition.hint = None


_modules_uncached = moto.backends.list_of_moto_modules
moto.backends.list_of_moto_modules = functools.lru_cache(maxsize=1)(lambda: tuple(_modules_uncached()))
Table.all_items = _all_items_of_partition
Table.query = _query_one_partition


_dynamodb_lock = threading.Lock()
_call_action = DynamoHandler.call_action


@functools.wraps(_call_action)
def _call_action_alone(self):
    with _dynamodb_lock:
        return _call_action(self)


DynamoHandler.call_action = _call_action_alone


def _blob(value):
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fast_dynamo_body(result):
    return json.dumps(result, default=_blob, separators=(",", ":"))


# The data plane: answers of attribute values only (no timestamps or other shapes to convert).
_ITEM_OPERATIONS = frozenset(
    ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem")
    + ("TransactGetItems", "TransactWriteItems")
)
_execute_result = DynamoResult.execute_result


def _execute_dynamo_result(self, context):
    if context.operation_model.name not in _ITEM_OPERATIONS:
        return _execute_result(self, context)
    members = context.operation_model.output_shape.members
    answer = {k: v for k, v in self.result.items() if k in members}
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, _fast_dynamo_body(answer)


DynamoResult.execute_result = _execute_dynamo_result


from moto.sqs.models import Queue  # noqa: E402

_visible_messages = Queue.messages.fget


def _fair_messages(self):
    visible = _visible_messages(self)
    if self.fifo_queue:
        return visible
    in_flight = {}
    for message in self._messages:
        if message.group_id and not message.visible:
            in_flight[message.group_id] = in_flight.get(message.group_id, 0) + 1
    if not in_flight:
        return visible
    return sorted(visible, key=lambda m: in_flight.get(m.group_id, 0) if m.group_id else 0)


Queue.messages = property(_fair_messages)
