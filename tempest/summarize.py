"""Sort the last Tempest run into passed/failed/skipped and compare with the expected list.

Usage: summarize.py WORKSPACE EXPECTED_PASS_FILE
Exit status 1 when a test of the expected list did not pass.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import subunit
import testtools


class Collect(testtools.StreamResult):
    def __init__(self) -> None:
        super().__init__()
        self.status_of: dict[str, str] = {}
        self.reasons: dict[str, str] = {}

    def status(self, test_id=None, test_status=None, file_name=None, file_bytes=None,  # type: ignore[override]
               **kwargs):  # noqa: ANN001, ANN003
        if test_id is None:
            return
        if test_status in ("success", "fail", "skip", "xfail", "uxsuccess"):
            self.status_of[test_id] = test_status
        if file_name == "reason" and file_bytes:
            self.reasons[test_id] = bytes(file_bytes).decode(errors="replace")


def main() -> int:
    ws, expected_path = Path(sys.argv[1]), Path(sys.argv[2])
    raw = subprocess.run([str(Path(sys.executable).parent / "stestr"), "last", "--subunit"],
                         cwd=ws, capture_output=True, check=False).stdout
    result = Collect()
    subunit.ByteStreamToStreamResult(__import__("io").BytesIO(raw)).run(result)
    strip = re.compile(r"\[.*\]$")
    by = {"success": [], "fail": [], "skip": []}  # type: dict[str, list[str]]
    for test_id, status in result.status_of.items():
        if test_id.startswith("setUpClass") or test_id.startswith("tearDownClass"):
            key = "fail" if status == "fail" else "skip"
        else:
            key = {"xfail": "success", "uxsuccess": "fail"}.get(status, status)
        by.setdefault(key, []).append(strip.sub("", test_id))
    for key, name in (("success", "passed"), ("fail", "failed"), ("skip", "skipped")):
        (ws / f"{name}.txt").write_text("\n".join(sorted(by.get(key, []))) + "\n")
    print(f"passed {len(by['success'])}, failed {len(by['fail'])}, skipped {len(by['skip'])}")
    for test_id in sorted(by["skip"]):
        reason = result.reasons.get(test_id, "")
        print(f"  skip {test_id}: {reason.strip()[:120]}")
    if not expected_path.exists():
        print(f"(no expected list at {expected_path})")
        return 0
    expected = {line.strip() for line in expected_path.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    passed = set(by["success"])
    missing = sorted(expected - passed)
    extra = sorted(passed - expected)
    for test_id in missing:
        print(f"  REGRESSION (expected to pass): {test_id}")
    for test_id in extra:
        print(f"  new pass (add to {expected_path.name}): {test_id}")
    print(f"expected {len(expected)}: {len(expected & passed)} passed, {len(missing)} did not")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
