"""The root sidecar daemon (V2-A/C/D/J): PID threat map, Tier-2, accumulator."""
