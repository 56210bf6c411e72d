"""Two processes writing one SQLite file at once wait for each other, never fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from digest.database import open_database
from subscribers.models import Status, Subscriber

IMPORTER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from subscribers.csv_import import import_csv
from digest.database import open_database
db = open_database(sys.argv[1])
report = import_csv(db, Path(sys.argv[2]), lambda: datetime.now(UTC), confirmed=True)
print(report.added, report.rejected)
"""

UNSUBSCRIBER = """
import sys
from datetime import UTC, datetime
from subscribers import audience
from digest.database import open_database
db = open_database(sys.argv[1])
done = 0
for n in range(int(sys.argv[2])):
    with db.transaction() as session:
        subscriber = audience.get(session, f"early{n}@example.org")
        done += audience.unsubscribe(session, subscriber, datetime.now(UTC), "test")
print(done)
"""


def test_import_and_unsubscribe_at_once(tmp_path: Path) -> None:
    """An import and a stream of unsubscribes share the file with no 'database is locked'."""
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    early = 300
    seed = tmp_path / "early.csv"
    seed.write_text("email\n" + "".join(f"early{n}@example.org\n" for n in range(early)))
    big = tmp_path / "big.csv"
    big.write_text("email,name\n" + "".join(f"p{n}@example.org,P {n}\n" for n in range(8000)))
    db = open_database(url)
    first = subprocess.run(
        [sys.executable, "-c", IMPORTER, url, str(seed)], capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", IMPORTER, url, str(big)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [sys.executable, "-c", UNSUBSCRIBER, url, str(early)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
    assert outputs[0][0].split() == ["8000", "0"]
    assert outputs[1][0].strip() == str(early)
    with db.transaction() as session:
        counts = {
            status: session.query(Subscriber).filter(Subscriber.status == status).count()
            for status in Status
        }
    assert counts[Status.active] == 8000
    assert counts[Status.unsubscribed] == early
    db.close()
