"""The check runner the e2e scripts share: each check runs at once, prints `ok` or `FAIL`
with the error, and `report` prints the totals and exits 1 on any failure."""

import sys

results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok   {name}")
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            results.append((name, e))
            print(f"FAIL {name}: {e!r}")
        return fn

    return wrap


def report(label):
    failed = sum(1 for _, e in results if e)
    print(f"{label}: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
