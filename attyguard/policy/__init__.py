"""SEC-002: the per-process runtime policy (audit / alert / enforce) over kernel events.

`model` (frozen data), `syscalls` (this machine's syscall table), `load` (YAML with
located errors), `evaluate` (pure checks), `sinks` (alert delivery), `runtime` (the
daemon side: event sources, sampling, records).
"""
