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
#    narrowed to the items the sort-key condition accepts; moto's own code does everything else
#    (pagination, limits, filters, projections). An index query still scans the table, but
#    without first sorting all of it: moto sorts its matches by the index and table keys anyway.
#
# 3. One DynamoDB request at a time. moto's DynamoDB is not thread-safe and waitress serves
#    requests on many threads: a TransactWriteItems deep-copies the table while another request
#    inserts into it ("dictionary changed size during iteration", answered 500), and a cancelled
#    transaction restores that copy, wiping writes other requests made meanwhile. DynamoDB makes
#    every call atomic; a lock around each DynamoDB action does the same here. No DynamoDB call
#    waits (unlike SQS long polls), and the GIL serialises moto's Python anyway.
import functools
import threading

import moto.backends
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

_partition = threading.local()
_all_items = Table.all_items
_query = Table.query


def _all_items_of_partition(self):
    hint = getattr(_partition, "hint", None)
    if hint is None or hint[0] is not self:
        return _all_items(self)
    if hint[1] is None:
        return [i for part in self.items.values() for i in (part.values() if self.range_key_attr else [part])]
    _, hash_key, range_comparison, range_values = hint
    found = self.items.get(hash_key)
    if found is None:
        return []
    if not self.range_key_attr:
        return [found]
    items = found.values()
    if range_comparison:
        items = [i for i in items if i.range_key is not None and i.range_key.compare(range_comparison, range_values)]
    return sorted(items, key=lambda i: i.range_key)


def _query_one_partition(self, hash_key, range_comparison, range_values, *args, **kwargs):
    index_name = args[4] if len(args) > 4 else kwargs.get("index_name")
    multi_attribute = kwargs.get("range_key_conditions") and len(kwargs["range_key_conditions"]) > 1
    if index_name:
        _partition.hint = (self, None, None, None)
    elif hash_key is None or multi_attribute:
        return _query(self, hash_key, range_comparison, range_values, *args, **kwargs)
    else:
        _partition.hint = (self, hash_key, range_comparison, range_values)
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
