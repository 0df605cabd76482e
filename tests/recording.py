"""The recording carrier: a stand-in for a real carrier API that counts what it was asked to do.

One carrier for the tests and the chaos run (`bench/chaos.py`). Set `ORDER_CARRIER_CLIENT` to
`tests.recording.RecordingCarrier` and `RECORDING_CARRIER_PATH` to a file: every call and every
shipment is a row in that SQLite file, written by whichever process calls (web and cluster
workers, killed at any moment, add to one tally). The file is not our database, so the tally
never depends on one of our transactions committing — like the outside world's.

Like a real carrier API it honours an idempotency key (the same key returns the first shipment,
no new one) and, without a key, creates a new shipment on every call: a repeated call without
the key is a second parcel.

Reading: `counts()` -> {"calls", "shipments", "voided", "duplicate_shipments"} (duplicates: the
live shipments beyond the first for one order); `tally()` -> per order id {"carrier_calls",
"shipments", "voided"}; `reset()` empties the file.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from contextlib import closing

from orders.carriers import Shipment, label_url

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, order_id INTEGER, idempotency_key TEXT,
    tracking_number TEXT
);
CREATE TABLE IF NOT EXISTS shipments (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, idempotency_key TEXT UNIQUE,
    tracking_number TEXT NOT NULL UNIQUE, label_url TEXT NOT NULL, voided INTEGER DEFAULT 0
);
"""


def _connect() -> sqlite3.Connection:
    # Autocommit; each write below is one statement or an explicit IMMEDIATE transaction, and
    # concurrent processes wait for the file's write lock (up to 30 s) instead of failing.
    db = sqlite3.connect(os.environ["RECORDING_CARRIER_PATH"], timeout=30, isolation_level=None)
    db.executescript(SCHEMA)
    return db


class RecordingCarrier:
    name = "recording"

    def create_shipment(self, order, *, idempotency_key: str = "") -> Shipment:
        key = idempotency_key or None  # NULLs never collide: no key, a new shipment
        with closing(_connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO calls (kind, order_id, idempotency_key) VALUES ('create', ?, ?)",
                (order.pk, key),
            )
            db.execute(
                "INSERT OR IGNORE INTO shipments "
                "(order_id, idempotency_key, tracking_number, label_url) VALUES (?, ?, ?, ?)",
                (order.pk, key, f"REC{secrets.token_hex(6).upper()}", label_url(order)),
            )
            row_id = db.execute("SELECT last_insert_rowid()").fetchone()[0]
            if key is not None:
                row_id = db.execute(
                    "SELECT id FROM shipments WHERE idempotency_key = ?", (key,)
                ).fetchone()[0]
            tracking, url = db.execute(
                "SELECT tracking_number, label_url FROM shipments WHERE id = ?", (row_id,)
            ).fetchone()
            db.execute("COMMIT")
        return Shipment(tracking_number=tracking, label_url=url, idempotency_key=idempotency_key)

    def void(self, shipment: Shipment) -> None:
        with closing(_connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO calls (kind, idempotency_key, tracking_number) VALUES ('void', ?, ?)",
                (shipment.idempotency_key or None, shipment.tracking_number),
            )
            db.execute(
                "UPDATE shipments SET voided = 1 WHERE tracking_number = ?",
                (shipment.tracking_number,),
            )
            db.execute("COMMIT")


def tally() -> dict[str, dict[int, int]]:
    """Per order id: create calls, shipments created, shipments voided."""
    with closing(_connect()) as db:
        return {
            "carrier_calls": dict(
                db.execute(
                    "SELECT order_id, COUNT(*) FROM calls WHERE kind = 'create' GROUP BY order_id"
                )
            ),
            "shipments": dict(
                db.execute("SELECT order_id, COUNT(*) FROM shipments GROUP BY order_id")
            ),
            "voided": dict(
                db.execute(
                    "SELECT order_id, COUNT(*) FROM shipments WHERE voided GROUP BY order_id"
                )
            ),
        }


def counts() -> dict[str, int]:
    recorded = tally()
    live = {
        order: n - recorded["voided"].get(order, 0) for order, n in recorded["shipments"].items()
    }
    return {
        "calls": sum(recorded["carrier_calls"].values()),
        "shipments": sum(recorded["shipments"].values()),
        "voided": sum(recorded["voided"].values()),
        "duplicate_shipments": sum(n - 1 for n in live.values() if n > 1),
    }


def reset() -> None:
    with closing(_connect()) as db:
        db.executescript("DELETE FROM calls; DELETE FROM shipments;")
