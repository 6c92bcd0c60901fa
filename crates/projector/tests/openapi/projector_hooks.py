"""Keeps a schemathesis run bounded: a long-poll's `wait` (up to 60 s by the
documents) is cut to at most 1 s, so that no generated request waits for a
change that never comes. Every other value is sent as generated."""

import schemathesis


@schemathesis.hook
def map_query(context, query):
    if isinstance(query, dict) and isinstance(query.get("wait"), int) and query["wait"] > 1:
        query["wait"] = 1
    return query
