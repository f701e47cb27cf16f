"""The embedded store's linear cursor yields exactly what mongomock's own cursor yields."""

from __future__ import annotations

import mongomock
from mongomock.collection import Cursor

from motif_screen.db import embedded


def _queries(col):
    """Cursor uses that touch skip, limit, sort, projections, re-iteration and rewinds."""
    out = {"all": list(col.find()), "projection": list(col.find({}, {"k": 1, "_id": 0}))}
    out["filter_sort"] = list(col.find({"k": {"$gte": 10}}).sort("k", -1))
    out["skip_limit"] = list(col.find().sort("k", 1).skip(7).limit(5))
    out["negative_limit"] = list(col.find().sort("k", 1).limit(-3))
    cursor = col.find({"k": {"$lt": 6}})
    first = next(cursor)
    out["partial_then_rest"] = [first, *cursor]
    cursor.rewind()
    out["rewound"] = list(cursor)
    out["index"] = col.find().sort("k", 1)[4]
    out["slice"] = list(col.find().sort("k", 1)[3:6])
    cursor = col.find().sort("k", 1)
    out["alive"] = [cursor.alive, next(cursor)["k"], cursor.alive]
    out["distinct"] = sorted(col.find().distinct("k"))
    out["count"] = col.count_documents({"k": {"$gt": 3}})
    out["aggregate"] = list(col.aggregate([{"$match": {"k": {"$gt": 15}}}, {"$sort": {"k": 1}}]))
    return out


def _collection():
    col = mongomock.MongoClient().db.docs
    col.insert_many([{"_id": i, "k": (i * 7) % 20, "nested": {"v": [i, i + 1]}} for i in range(20)])
    return col


def test_linear_cursor_yields_what_mongomock_yields(monkeypatch):
    mongomocks_own = getattr(Cursor._compute_results, "__wrapped__", Cursor._compute_results)
    monkeypatch.setattr(Cursor, "_compute_results", mongomocks_own)  # the installed one comes back afterwards
    expected = _queries(_collection())
    embedded.linear_cursors()
    assert getattr(Cursor._compute_results, "linear", False)
    assert _queries(_collection()) == expected


def test_linear_cursor_sees_writes_between_iterations():
    embedded.linear_cursors()
    col = _collection()
    cursor = col.find({"k": {"$gte": 0}})
    assert len(list(cursor)) == 20
    col.insert_one({"_id": 99, "k": 1})
    assert len(list(col.find({"k": {"$gte": 0}}))) == 21
    documents = list(col.find().sort("k", 1).skip(19))
    assert [d["_id"] for d in documents] == [d["_id"] for d in sorted(col.find(), key=lambda d: d["k"])][19:]


def test_installing_twice_wraps_once():
    embedded.linear_cursors()
    installed = Cursor._compute_results
    embedded.linear_cursors()
    assert Cursor._compute_results is installed
