"""Runs one benchmark contender and reports its wall time and peak resident memory.

    python measure.py -- COMMAND ARGS...

The command's stdout is captured (and copied to stderr, so logs stay visible); its stderr
passes through. Prints one JSON line: `seconds` (wall time), `peak_rss_mb` (the largest
resident set of the command or any process it waited for, from `getrusage`), `returncode`
and `stdout` (the command's whole output, for the caller to read its own result from).
Standard library only, so any Python 3 runs it.
"""

import json
import resource
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    started = time.perf_counter()
    done = subprocess.run(sys.argv[2:], stdout=subprocess.PIPE, text=True, errors="replace")
    seconds = time.perf_counter() - started
    sys.stderr.write(done.stdout)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_kb / 1024,
                "returncode": done.returncode,
                "stdout": done.stdout,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
