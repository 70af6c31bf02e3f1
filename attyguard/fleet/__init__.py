"""Events to outside: the daemon's records as OCSF events for a fleet's pipeline.

`ocsf.py` maps a daemon record to one OCSF 1.x event (pure); `sink.py` sends
them to syslog (RFC 5424) or journald without ever stalling the daemon.
"""
