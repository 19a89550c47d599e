"""Notifiers against local servers (127.0.0.1 only), the persisted outbox, and the AlertBook."""
from __future__ import annotations

import email
import hashlib
import hmac
import io
import json
import socket
import sqlite3
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crawler.notify import (
    SIGNATURE_HEADER,
    AlertBook,
    EmailNotifier,
    LogNotifier,
    NotifyError,
    Outbox,
    SlackNotifier,
    WebhookNotifier,
    make_notifier,
    missing_env,
    slack_payload,
)
from crawler.topics import Target, Topic

ALERT = {
    "alert_id": "elections:c1:1",
    "topic_id": "elections",
    "topic_name": "Élections",
    "cluster_id": "c1",
    "kind": "new",
    "title": "Élections européennes : la liste de Jordan Bardella en tête",
    "url": "https://www.lemonde.fr/politique/article/2024/05/20/elections.html",
    "outlets": ["Le Monde", "Le Figaro"],
    "articles": [{"id": "a1", "title": "Élections européennes", "outlet": "Le Monde",
                  "url": "https://www.lemonde.fr/politique/article/2024/05/20/elections.html"}],
    "created": "2024-05-20T08:00:00+00:00",
}


# --------------------------------------------------------------------------- local HTTP receiver


class Receiver:
    """A local HTTP server answering with a scripted list of status codes (then 200)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        self.accepted: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = outer.statuses.pop(0) if outer.statuses else 200
                req = {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
                outer.requests.append(req)
                if status == 200:
                    outer.accepted.append(req)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_webhook_json_with_hmac():
    env = {"HOOK_SECRET": "s3cr3t"}
    with Receiver() as rx:
        target = Target(type="webhook", url=rx.url, secret_env="HOOK_SECRET", retries=0)
        WebhookNotifier(target, env=env).send(ALERT)
    assert len(rx.requests) == 1
    req = rx.requests[0]
    assert json.loads(req["body"]) == ALERT
    assert req["headers"]["Content-Type"].startswith("application/json")
    expected = "sha256=" + hmac.new(b"s3cr3t", req["body"], hashlib.sha256).hexdigest()
    assert req["headers"][SIGNATURE_HEADER] == expected
    wrong = "sha256=" + hmac.new(b"other", req["body"], hashlib.sha256).hexdigest()
    assert req["headers"][SIGNATURE_HEADER] != wrong
    assert req["headers"]["X-Veille-Alert-Id"] == ALERT["alert_id"]


def test_webhook_in_call_retries_then_gives_up():
    sleeps = []
    with Receiver([500, 503, 500, 500]) as rx:
        target = Target(type="webhook", url=rx.url, retries=2, backoff=0.25)
        with pytest.raises(NotifyError):
            WebhookNotifier(target, env={}, sleep=sleeps.append).send(ALERT)
    assert len(rx.requests) == 3
    assert sleeps == [0.25, 0.5]  # exponential backoff between tries


def test_webhook_4xx_is_not_retried_in_call():
    with Receiver([404]) as rx:
        target = Target(type="webhook", url=rx.url, retries=3)
        with pytest.raises(NotifyError) as exc:
            WebhookNotifier(target, env={}, sleep=lambda s: None).send(ALERT)
    assert exc.value.permanent and len(rx.requests) == 1


def test_missing_secret_env_is_an_error():
    target = Target(type="webhook", url="http://127.0.0.1:9/hook", secret_env="NOPE_NOT_SET")
    assert missing_env(target, {}) == ["NOPE_NOT_SET"]
    with pytest.raises(NotifyError, match="NOPE_NOT_SET"):
        WebhookNotifier(target, env={}).send(ALERT)


def test_outbox_500_then_200_delivers_exactly_once(tmp_path):
    conn = sqlite3.connect(tmp_path / "veille.db")
    with Receiver([500]) as rx:
        target = Target(type="webhook", name="hook", url=rx.url, retries=0)
        box = Outbox(conn, base_delay=60, env={})
        box.enqueue(ALERT, target, now=1000)
        assert box.enqueue(ALERT, target, now=1001) == box.enqueue(ALERT, target, now=1002)  # idempotent
        assert box.pending() == 1

        assert box.deliver_due(now=1000) == {"sent": 0, "retry": 1, "failed": 0}
        assert len(rx.requests) == 1 and box.pending() == 1
        assert box.stats()["retrying"] == 1
        assert box.next_due() == 1060  # rescheduled with backoff
        assert box.deliver_due(now=1030) == {"sent": 0, "retry": 0, "failed": 0}  # not due yet
        assert len(rx.requests) == 1

        assert box.deliver_due(now=1060) == {"sent": 1, "retry": 0, "failed": 0}
        assert box.deliver_due(now=99999) == {"sent": 0, "retry": 0, "failed": 0}
        # a new Outbox on the same DB (restart) has nothing left to send
        assert Outbox(tmp_path / "veille.db", env={}).deliver_due(now=99999)["sent"] == 0
    assert [r["status"] for r in rx.requests] == [500, 200]
    assert len(rx.accepted) == 1
    assert json.loads(rx.accepted[0]["body"])["alert_id"] == ALERT["alert_id"]
    assert box.pending() == 0 and box.failed() == 0 and box.sent() == 1


def test_outbox_backoff_grows_and_keeps_failed_rows(tmp_path):
    calls = []

    class Down:
        def send(self, alert):
            calls.append(alert["alert_id"])
            raise NotifyError("down")

    box = Outbox(tmp_path / "o.db", notifier_factory=lambda t: Down(), base_delay=10, max_attempts=3)
    box.enqueue(ALERT, {"type": "log", "name": "x"}, now=0)
    box.deliver_due(now=0)
    assert box.next_due() == 10
    box.deliver_due(now=10)
    assert box.next_due() == 30  # 10 * 2
    assert box.deliver_due(now=30) == {"sent": 0, "retry": 0, "failed": 1}
    assert box.pending() == 0 and box.failed() == 1  # kept, not lost
    assert box.deliver_due(now=10_000)["failed"] == 0 and len(calls) == 3
    assert box.retry_failed(now=20_000) == 1 and box.pending() == 1


def test_outbox_digest_groups_one_window(tmp_path):
    sent = []

    class Capture:
        def send(self, alert):
            sent.append(alert)

    box = Outbox(tmp_path / "o.db", notifier_factory=lambda t: Capture())
    tgt = {"type": "log", "name": "console"}
    a1 = dict(ALERT, alert_id="elections:c1:1")
    a2 = dict(ALERT, alert_id="elections:c2:1", outlets=["Libération"], title="Autre")
    a3 = dict(ALERT, alert_id="elections:c3:1", title="Fenêtre suivante")
    box.enqueue(a1, tgt, now=3600 * 10 + 5, digest_period=3600)
    box.enqueue(a2, tgt, now=3600 * 10 + 50, digest_period=3600)
    box.enqueue(a3, tgt, now=3600 * 11 + 5, digest_period=3600)
    assert box.deliver_due(now=3600 * 10 + 100)["sent"] == 0  # window not over
    assert box.deliver_due(now=3600 * 11)["sent"] == 2
    assert len(sent) == 1 and sent[0]["kind"] == "digest"
    assert [i["alert_id"] for i in sent[0]["items"]] == ["elections:c1:1", "elections:c2:1"]
    assert sent[0]["outlets"] == ["Le Monde", "Le Figaro", "Libération"]
    assert box.deliver_due(now=3600 * 12)["sent"] == 1 and len(sent) == 2


def test_slack_payload_shape_and_post():
    p = slack_payload(ALERT)
    assert "Élections" in p["text"]
    types = [b["type"] for b in p["blocks"]]
    assert types == ["header", "section", "context"]
    assert p["blocks"][0]["text"] == {"type": "plain_text", "text": "Élections", "emoji": True}
    assert p["blocks"][1]["text"]["type"] == "mrkdwn"
    assert p["blocks"][1]["text"]["text"] == f"*<{ALERT['url']}|{ALERT['title']}>*"
    assert p["blocks"][2]["elements"][0]["text"] == "Médias : Le Monde, Le Figaro"

    upd = slack_payload(dict(ALERT, kind="update", new_outlets=["Le Figaro"], title="A < B & C"))
    assert "aussi repris par Le Figaro" in upd["blocks"][1]["text"]["text"]
    assert "A &lt; B &amp; C" in upd["blocks"][1]["text"]["text"]

    with Receiver() as rx:
        SlackNotifier(Target(type="slack", url_env="SLACK_URL"), env={"SLACK_URL": rx.url}).send(ALERT)
    assert json.loads(rx.requests[0]["body"]) == p


# --------------------------------------------------------------------------- SMTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collect:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    handler = _Collect()
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"veille" and auth_data.password == b"pw")

    controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    try:
        yield controller, handler, logins
    finally:
        controller.stop()


def test_email_arrives_with_subject_and_outlets(smtp_server):
    controller, handler, logins = smtp_server
    target = Target(type="email", to=["desk@example.org"], sender="veille@example.org",
                    smtp_host="127.0.0.1", smtp_port=controller.port,
                    username_env="SMTP_USER", password_env="SMTP_PW")
    EmailNotifier(target, env={"SMTP_USER": "veille", "SMTP_PW": "pw"}).send(ALERT)
    assert logins == [(b"veille", b"pw")]
    assert len(handler.messages) == 1
    env = handler.messages[0]
    assert env.rcpt_tos == ["desk@example.org"]
    msg = email.message_from_bytes(env.content, policy=policy.default)
    assert msg["Subject"] == "[Veille] Élections : Élections européennes : la liste de Jordan Bardella en tête"
    body = msg.get_content()
    assert "Médias : Le Monde, Le Figaro" in body
    assert ALERT["url"] in body


def test_email_starttls_required_but_not_offered(smtp_server):
    controller, handler, _ = smtp_server
    target = Target(type="email", to=["desk@example.org"], smtp_host="127.0.0.1", smtp_port=controller.port,
                    starttls=True)
    with pytest.raises(NotifyError, match="STARTTLS"):
        EmailNotifier(target, env={}).send(ALERT)
    assert handler.messages == []


def test_email_through_outbox_and_factory(smtp_server, tmp_path):
    controller, handler, _ = smtp_server
    target = Target(type="email", name="desk", to=["desk@example.org"], smtp_host="127.0.0.1",
                    smtp_port=controller.port)
    assert isinstance(make_notifier(target), EmailNotifier)
    box = Outbox(tmp_path / "o.db", env={})
    box.enqueue(dict(ALERT, kind="update", new_outlets=["Le Figaro"]), target, now=5)
    assert box.deliver_due(now=5)["sent"] == 1
    msg = email.message_from_bytes(handler.messages[0].content, policy=policy.default)
    assert "mise à jour" in msg["Subject"] and "aussi repris par Le Figaro" in msg["Subject"]


def test_log_notifier_writes_a_line():
    out = io.StringIO()
    LogNotifier(Target(type="log"), stream=out).send(ALERT)
    line = out.getvalue()
    assert line.startswith("ALERT [Veille] Élections") and "Le Monde, Le Figaro" in line


# --------------------------------------------------------------------------- AlertBook

TOPIC = Topic(id="elections", name="Élections", query="élection")


def art(i, outlet, title="Élections européennes"):
    return {"id": f"https://{outlet.lower().replace(' ', '')}.fr/{i}", "title": title, "lead": "", "body": "",
            "outlet": outlet, "source": outlet.lower(), "authors": [], "lang": "fr", "published": None}


def test_alertbook_same_cluster_new_then_update(tmp_path):
    book = AlertBook(tmp_path / "v.db")
    first = book.record_match(TOPIC, art(1, "Le Monde"), "c1", now=1000)
    assert first["kind"] == "new" and first["outlets"] == ["Le Monde"] and first["cluster_id"] == "c1"
    assert first["topic_name"] == "Élections" and first["url"] == "https://lemonde.fr/1"
    second = book.record_match(TOPIC, art(2, "Le Figaro"), "c1", now=1100)
    assert second["kind"] == "update"
    assert second["outlets"] == ["Le Monde", "Le Figaro"] and second["new_outlets"] == ["Le Figaro"]
    assert second["alert_id"] != first["alert_id"]
    assert book.record_match(TOPIC, art(2, "Le Figaro"), "c1", now=1200) is None  # same article again
    assert book.record_match(TOPIC, art(3, "Le Monde"), "c1", now=1300) is None  # outlet already told
    assert book.alerts_count() == 2


def test_alertbook_two_clusters_two_new(tmp_path):
    book = AlertBook(tmp_path / "v.db")
    a = book.record_match(TOPIC, art(1, "Le Monde"), "c1", now=1000)
    b = book.record_match(TOPIC, art(2, "Le Figaro"), "c2", now=1001)
    assert a["kind"] == b["kind"] == "new" and a["alert_id"] != b["alert_id"]
    other = Topic(id="europe", name="Europe", query="europe")
    assert book.record_match(other, art(1, "Le Monde"), "c1", now=1002)["kind"] == "new"  # per topic


def test_alertbook_reopen_never_repeats(tmp_path):
    path = tmp_path / "v.db"
    book = AlertBook(path)
    assert book.record_match(TOPIC, art(1, "Le Monde"), "c1", now=1000)["kind"] == "new"
    book.conn.close()
    book = AlertBook(path)
    assert book.record_match(TOPIC, art(1, "Le Monde"), "c1", now=1010) is None
    assert book.record_match(TOPIC, art(5, "Le Monde"), "c1", now=1020) is None
    assert book.record_match(TOPIC, art(6, "Ouest-France"), "c1", now=1030)["kind"] == "update"


def test_alertbook_window_and_max_updates(tmp_path):
    book = AlertBook(tmp_path / "v.db", update_window=3600, max_updates=1)
    assert book.record_match(TOPIC, art(1, "Le Monde"), "c1", now=0)["kind"] == "new"
    assert book.record_match(TOPIC, art(2, "Le Figaro"), "c1", now=10)["kind"] == "update"
    assert book.record_match(TOPIC, art(3, "Libération"), "c1", now=20) is None  # max_updates reached
    again = book.record_match(TOPIC, art(4, "La Croix"), "c1", now=7200)  # story resurfaces later
    assert again["kind"] == "new" and again["outlets"] == ["La Croix"]
    assert book.record_match(TOPIC, art(1, "Le Monde"), "c1", now=7300) is None  # old article, not news
    assert book.record_match(TOPIC, art(9, "Le Monde"), "c1", now=7400)["kind"] == "update"


def test_notify_match_is_atomic_with_outbox(tmp_path):
    conn = sqlite3.connect(tmp_path / "v.db")
    book, box = AlertBook(conn), Outbox(conn, env={})
    targets = [Target(type="log", name="console"), Target(type="webhook", name="hook", url="http://127.0.0.1:9/x")]
    alert = book.notify_match(TOPIC, art(1, "Le Monde"), "c1", 1000, box, targets)
    assert alert["kind"] == "new" and box.pending() == 2
    assert book.notify_match(TOPIC, art(1, "Le Monde"), "c1", 1001, box, targets) is None
    assert box.pending() == 2
    digest = Topic(id="d", name="D", query="x", mode="digest", digest_period="1h")
    book.notify_match(digest, art(1, "Le Monde"), "c1", 1000, box, targets[:1])
    row = conn.execute("SELECT next_attempt, digest_key FROM outbox_deliveries WHERE alert_id LIKE 'd:%'").fetchone()
    assert row == (3600.0, "d@3600")
