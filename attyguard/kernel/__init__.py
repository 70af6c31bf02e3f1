"""The kernel layer (seed V2-B): exec sensors and the enforcement ladder.

Sensors (eBPF through libbpf/ctypes, fanotify, the netlink proc connector) turn
what the kernel sees into the plain events of `attyguard.kernel.events`; the
daemon judges them (`attyguard.daemon.execguard`) and answers permission rungs.
"""
