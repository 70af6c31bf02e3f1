"""Rules from outside (seed V2-I): SigmaHQ Linux rules and GTFOBins, as one bundle.

`sigma.py` and `gtfobins.py` compile the sources (at `attyguard feeds update`
time only); `bundle.py` writes and switches bundles atomically; `match.py`
evaluates a bundle on an exec view (pure), for typed lines and kernel exec events.
"""
