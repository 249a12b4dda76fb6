"""The local runner: the whole async stack as native processes under one state directory.

`stack` has the entry points (up, down, status), `supervisor` the start/watch/stop logic,
`redis_server` and `clickhouse_server` the two servers' configuration, `demo` the embedded demo,
`state` the stack.json format that `down`, `status` and `verify` read.
"""
