"""What each case of the bad-input and fault suites ended in, counted for pytest's closing summary (the README's Reliability numbers).

A suite's helpers call `saw(kind)` when a check of that kind passed; the conftest hooks add how each case ended and print one line.
A case that fails with an exception other than an assertion is a raw traceback; one that fails an assertion is a wrong result
(a result, message or file that is not what it should be)."""
import os

SUITES = ('test_bad_input.py', 'test_faults.py')
KINDS = ('fault survived', 'clear error', 'reported', 'right result')   # a case counts under the first kind it saw
SEEN, ENDED = {}, {}   # test id -> kinds seen; test id -> 'passed', 'raw traceback', 'wrong result' or 'skipped'


def saw(kind: str):
    "Note that the running test checked an outcome of `kind` (one of KINDS)."
    assert kind in KINDS, kind
    SEEN.setdefault(os.environ.get('PYTEST_CURRENT_TEST', '?').rsplit(' (', 1)[0], set()).add(kind)


def in_suite(nodeid: str) -> bool: return nodeid.split('::')[0].endswith(SUITES)


def summary() -> str | None:
    "One line: cases tried and what they ended in (None when no suite case ran)."
    if not ENDED: return None
    n = {k: 0 for k in KINDS + ('raw traceback', 'wrong result', 'skipped')}
    for tid, end in ENDED.items():
        n[next((k for k in KINDS if k in SEEN.get(tid, ())), 'right result') if end == 'passed' else end] += 1
    ran = len(ENDED) - n['skipped']
    return (f"bad input and faults: {ran} cases tried ({n['skipped']} skipped): {n['clear error']} clear errors, {n['reported']} reported and "
            f"counted, {n['right result']} right results, {n['fault survived']} faults survived; {n['raw traceback']} raw tracebacks, "
            f"{n['wrong result']} wrong results")
