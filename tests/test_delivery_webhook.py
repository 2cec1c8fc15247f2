"""Alert delivery to webhooks, against a real HTTP receiver on 127.0.0.1 (stdlib http.server).

The receiver records every POST and dedupes on the ``Idempotency-Key`` header, as a well-behaved
receiver would. A crash between sending and recording is simulated by making the ledger's "sent"
step raise right after the POST went out; clocks are injected, nothing sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_push_support import NOW, Clock, open_alert, set_alert

from connector.cli import main
from connector.config import Config, load_config
from connector.delivery import deliver_alerts, failing_deliveries
from connector.delivery.ledger import Ledger
from connector.store import Store, named_lock, open_store
from connector.store.schema import alert_deliveries, alerts

ROBOT_KEY = "6f1e2d3c-robot-key-0a9b8c7d"


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    accepted: bool


@dataclass
class Receiver:
    """Answers ``fail`` POSTs with HTTP ``status``, then ``answer`` (JSON) with 200."""

    fail: int = 0
    status: int = 500
    answer: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    posts: list[Post] = field(default_factory=list)
    url: str = ""

    @property
    def keys(self) -> list[str]:
        return [post.headers["Idempotency-Key"] for post in self.posts]

    def delivered(self) -> dict[str, int]:
        """Fingerprint → messages shown: accepted posts, deduped on the idempotency key."""
        shown = {
            p.headers["Idempotency-Key"]: p.headers["X-Alert-Fingerprint"] for p in self.posts if p.accepted
        }
        return {fp: list(shown.values()).count(fp) for fp in shown.values()}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            accepted = state.fail <= 0
            state.posts.append(Post(self.path, dict(self.headers), body, accepted))
            if accepted:
                reply, status = state.answer, 200
            else:
                state.fail -= 1
                reply, status = {"error": f"down (key {ROBOT_KEY})"}, state.status
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook?key={ROBOT_KEY}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def config_for(tmp_path: Path, db_url: str, url: str, fmt: str = "generic", extra: str = "") -> Config:
    (tmp_path / "data").mkdir(exist_ok=True)
    text = (
        f'[store]\nurl = "{db_url}"\n[clinic]\nlanguage = "zh"\n'
        '[sources.files]\nkind = "jsonl"\npath = "data"\n'
        '[delivery]\nfailing_after = 3\nretry_after = "5m"\nretry_max = "1h"\n'
        '[delivery.channels]\ndefault = ["ops"]\n'
        f'[delivery.webhooks.ops]\nurl = "{url}"\nformat = "{fmt}"\n{extra}'
    )
    path = tmp_path / "connector.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def rows(store: Store) -> list[tuple[str, str, str, int]]:
    with store.connect() as conn:
        found = conn.execute(
            sa.select(
                alert_deliveries.c.fingerprint,
                alert_deliveries.c.state,
                alert_deliveries.c.severity,
                alert_deliveries.c.attempts,
            ).order_by(alert_deliveries.c.fingerprint)
        )
        return [tuple(row) for row in found]


def test_each_alert_is_delivered_once_even_when_killed_between_send_and_record(
    tmp_path: Path, db_url: str, store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(tmp_path, db_url, receiver.url)
    fps = [open_alert(store, "files", f"a{n}", f"fu-{n}") for n in range(3)]
    real_sent = Ledger.sent
    crashes = []

    def killed_after_send(self: Ledger, key: Any, remote_id: str | None = None) -> None:
        if not crashes:
            crashes.append(key)
            raise KeyboardInterrupt("killed between sending and recording")
        real_sent(self, key, remote_id)

    monkeypatch.setattr(Ledger, "sent", killed_after_send)
    clock = Clock()

    with pytest.raises(KeyboardInterrupt):
        deliver_alerts(store, config, clock=clock)
    assert len(receiver.posts) == 1  # the first alert went out, then the process "died"
    assert [r[1:] for r in rows(store)] == [("pending", "breach", 1)]  # the intent, committed before

    clock.advance(minutes=15)
    report = deliver_alerts(store, config, clock=clock)

    assert report.counts()["delivered"] == 3
    assert receiver.delivered() == dict.fromkeys(fps, 1)  # after dedupe: each alert exactly once
    resent = [key for key in set(receiver.keys) if receiver.keys.count(key) > 1]
    assert len(resent) == 1 and receiver.keys.count(resent[0]) == 2  # re-sent at most once, same key
    assert len(receiver.posts) == 4
    assert {r[1] for r in rows(store)} == {"sent"}
    crashed_fp = crashes[0][0]
    assert [r[3] for r in rows(store) if r[0] == crashed_fp] == [2]

    clock.advance(hours=1)
    assert deliver_alerts(store, config, clock=clock).outcomes == []  # nothing is sent twice later
    assert len(receiver.posts) == 4


def test_generic_body_carries_key_fingerprint_and_texts(
    tmp_path: Path, db_url: str, store: Store, receiver: Receiver
) -> None:
    config = config_for(tmp_path, db_url, receiver.url, extra='language = "both"\n')
    fp = open_alert(store, "files", "agent-7", "fu-1")

    deliver_alerts(store, config, clock=Clock())

    (post,) = receiver.posts
    assert post.headers["Idempotency-Key"] == post.body["idempotency_key"]
    assert post.headers["X-Alert-Fingerprint"] == fp == post.body["fingerprint"]
    assert post.body["rule"] == "follow_up_overdue" and post.body["severity"] == "breach"
    assert post.body["agent_id"] == "agent-7" and post.body["entity_id"] == "fu-1"
    assert post.body["messages"]["zh"] == "回访 fu-1 已逾期未完成（应于 2026-10-30 17:00 前完成）"
    assert "Follow-up fu-1 was due 2026-10-30 17:00 and is not done" in post.body["text"]
    assert post.body["text"].index("【超时】回访逾期") < post.body["text"].index("[breach] follow-up overdue")


def test_wecom_and_dingtalk_robot_formats(
    tmp_path: Path, db_url: str, store: Store, receiver: Receiver
) -> None:
    receiver.answer = {"errcode": 0, "errmsg": "ok"}
    open_alert(store, "files", "agent-7", "fu-1")
    wecom = config_for(tmp_path, db_url, receiver.url, "wecom")
    deliver_alerts(store, wecom, clock=Clock())
    with store.begin() as conn:
        conn.execute(sa.delete(alert_deliveries))
    secret = "SEC0123456789abcdef"
    dingtalk = config_for(
        tmp_path, db_url, receiver.url, "dingtalk", f'secret = "{secret}"\nlanguage = "en"\n'
    )
    deliver_alerts(store, dingtalk, clock=Clock())

    wecom_post, ding_post = receiver.posts
    assert wecom_post.body["msgtype"] == "markdown"
    content = wecom_post.body["markdown"]["content"]
    assert (
        content.startswith("**【超时】回访逾期**\n回访 fu-1 已逾期未完成")
        and "> 客户经理：agent-7" in content
    )
    assert ding_post.body["msgtype"] == "markdown"
    assert ding_post.body["markdown"]["title"] == "[breach] follow-up overdue"
    assert ding_post.body["markdown"]["text"].startswith("**[breach] follow-up overdue**\nFollow-up fu-1")
    query = parse_qs(urlsplit(ding_post.path).query)
    timestamp = query["timestamp"][0]
    assert timestamp == str(int(NOW.timestamp() * 1000))
    expected = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    assert query["sign"] == [base64.b64encode(expected).decode()]
    assert query["key"] == [ROBOT_KEY]


def test_a_robot_refusal_is_a_failure(tmp_path: Path, db_url: str, store: Store, receiver: Receiver) -> None:
    receiver.answer = {"errcode": 93000, "errmsg": "invalid webhook url"}
    config = config_for(tmp_path, db_url, receiver.url, "wecom")
    open_alert(store, "files", "agent-7", "fu-1")

    (outcome,) = deliver_alerts(store, config, clock=Clock()).outcomes

    assert outcome.action == "failed" and "errcode 93000: invalid webhook url" in (outcome.error or "")


def test_a_failing_webhook_backs_off_and_shows_as_failing_after_n(
    tmp_path: Path, db_url: str, store: Store, receiver: Receiver
) -> None:
    receiver.fail = 4
    config = config_for(tmp_path, db_url, receiver.url)
    fp = open_alert(store, "files", "agent-7", "fu-1")
    clock = Clock()

    def run(after: timedelta) -> str | None:
        clock.now = NOW + after
        outcomes = deliver_alerts(store, config, clock=clock).outcomes
        return outcomes[0].action if outcomes else None

    assert run(timedelta(0)) == "failed"  # attempt 1; retry in 5 min
    assert run(timedelta(minutes=4)) is None  # not yet due: nothing sent
    assert run(timedelta(minutes=5)) == "failed"  # attempt 2; retry in 10 min
    assert run(timedelta(minutes=14)) is None
    with store.connect() as conn:
        assert failing_deliveries(conn, min_attempts=3) == []
    assert run(timedelta(minutes=15)) == "failed"  # attempt 3; retry in 20 min
    with store.connect() as conn:
        (failing,) = failing_deliveries(conn, min_attempts=3)
        next_at = conn.execute(sa.select(alert_deliveries.c.next_attempt_at)).scalar()
    assert (failing.fingerprint, failing.channel, failing.attempts) == (fp, "ops", 3)
    assert failing.rule == "follow_up_overdue" and failing.last_error.startswith("WEBHOOK: HTTP 500")
    assert ROBOT_KEY not in failing.last_error  # the robot's key never reaches the store or logs
    assert next_at == NOW + timedelta(minutes=35)
    assert run(timedelta(minutes=35)) == "failed"  # attempt 4; retry in 40 min (cap: 1 h)
    assert run(timedelta(minutes=95)) == "sent"  # the receiver is back
    assert len(receiver.posts) == 5 and len(set(receiver.keys)) == 1  # every retry had the same key
    with store.connect() as conn:
        assert failing_deliveries(conn, min_attempts=3) == []


def test_escalation_and_reopening_are_new_deliveries_resolution_retires_them(
    tmp_path: Path, db_url: str, store: Store, receiver: Receiver
) -> None:
    config = config_for(tmp_path, db_url, receiver.url)
    fp = open_alert(store, "files", "agent-7", "fu-1", severity="warning")
    clock = Clock()
    deliver_alerts(store, config, clock=clock)
    set_alert(store, fp, severity="breach")
    deliver_alerts(store, config, clock=clock)
    assert [post.body["severity"] for post in receiver.posts] == ["warning", "breach"]

    set_alert(store, fp, resolved_at=NOW + timedelta(hours=1))
    clock.advance(hours=1)
    deliver_alerts(store, config, clock=clock)
    assert {r[1] for r in rows(store)} == {"closed"} and len(receiver.posts) == 2
    with store.connect() as conn:
        delivered = conn.execute(sa.select(alerts.c.delivered).where(alerts.c.fingerprint == fp)).scalar()
    assert json.loads(delivered) == {"ops": "closed"}

    set_alert(store, fp, resolved_at=None, opened_at=NOW + timedelta(hours=2))  # re-opened: a new occurrence
    clock.advance(hours=1)
    deliver_alerts(store, config, clock=clock)
    assert len(receiver.posts) == 3 and len(set(receiver.keys)) == 3


def test_disabled_delivery_and_a_busy_lock_send_nothing(
    tmp_path: Path, db_url: str, store: Store, receiver: Receiver
) -> None:
    config = config_for(tmp_path, db_url, receiver.url)
    open_alert(store, "files", "agent-7", "fu-1")
    off = config.model_copy(update={"delivery": config.delivery.model_copy(update={"enabled": False})})

    assert deliver_alerts(store, off, clock=Clock()).outcomes == []
    with named_lock(store, "deliver", wait=False):  # another process is delivering
        busy = deliver_alerts(store, config, clock=Clock())

    assert busy.outcomes == [] and "deliver" in (busy.skipped or "")
    assert receiver.posts == [] and rows(store) == []


def test_status_lists_deliveries_failing_after_n(
    tmp_path: Path, db_url: str, store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.fail = 10
    config = config_for(tmp_path, db_url, receiver.url)
    fp = open_alert(store, "files", "agent-7", "fu-1")
    clock = Clock()
    for _ in range(3):
        deliver_alerts(store, config, clock=clock)
        clock.advance(hours=1)
    monkeypatch.setenv("CRM_CONNECTOR_NOW", NOW.isoformat())

    human = CliRunner().invoke(main, ["--config", str(config.path), "--lang", "en", "status"])
    data = json.loads(CliRunner().invoke(main, ["--config", str(config.path), "--json", "status"]).output)

    assert human.exit_code == 0, human.output
    assert "Alert deliveries failing" in human.output
    assert f"follow_up_overdue → ops (breach, alert {fp}): 3 attempts" in human.output
    assert ROBOT_KEY not in human.output
    (failing,) = data["failing_deliveries"]
    assert failing["fingerprint"] == fp and failing["attempts"] == 3 and failing["channel"] == "ops"
