"""A KernelLayer in its own process, for the fault tests to SIGKILL / SIGSTOP.

usage: python tests/kernel_sensor_child.py MARK_PATH GUARD_PID DECIDE_DELAY_MS DEADLINE_MS
                                           [cacheable]
Prints "ready" once the sensors are up (with `cacheable`: "ready <answer path>",
and its allows may be answered from the C loop's cache), then answers until killed.
"""

from __future__ import annotations

import sys
import threading
import time

from attyguard.kernel.events import ALLOW, ExecDecision, ExecEvent
from attyguard.kernel.layer import KernelLayer, probe


def main() -> None:
    mark, guard, delay_ms, deadline_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(
        sys.argv[4]
    )

    cacheable = sys.argv[5:] == ["cacheable"]
    answer = ExecDecision(True, cacheable=True) if cacheable else ALLOW

    def decide(ev: ExecEvent) -> ExecDecision:
        time.sleep(delay_ms / 1000)
        return answer

    layer = KernelLayer(probe(), decide=decide, on_event=lambda ev: None,
                        deadline_ms=deadline_ms, mode="enforce", mark_paths=[mark])
    layer.start()
    layer.guard_tree(guard)
    print(f"ready {layer.answer_path}" if cacheable else "ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
