"""Topic alerts end to end: real `veille crawl` processes on local outlets carrying one AFP wire story.

Three outlets (three SiteServers, three sources) publish near-duplicate copies of one dispatch
(dateline, "(Avec AFP)" tail, changed headlines, a word edited); the dedup puts them in one
story, and a topic matching it gives one alert per story: "new" for the first crawl (two
copies folded into it), "update" when a third outlet carries it, nothing on a re-crawl.
Receivers are local: a webhook HTTP server and an aiosmtpd SMTP server on 127.0.0.1.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crawler.mirror.server import Route, SiteServer

TODAY = datetime.now(timezone.utc).strftime("%Y-%m-%dT07:30:00+00:00")

WIRE = [
    "La SNCF et les quatre syndicats représentatifs des cheminots n'ont pas trouvé d'accord mercredi soir sur les "
    "salaires, et un préavis de grève a été déposé pour le premier week-end des vacances de Noël, a-t-on appris "
    "auprès de la CGT-Cheminots et de SUD-Rail.",
    "Le mouvement pourrait concerner les contrôleurs des TGV et des trains Intercités du vendredi 19 au lundi "
    "22 décembre, une période où la compagnie prévoit de transporter plus de deux millions de voyageurs, selon la "
    "direction.",
    "« Nous avons fait des propositions sérieuses, avec une hausse moyenne de 4,2 % et une prime exceptionnelle de "
    "400 euros », a déclaré le directeur des ressources humaines du groupe, qui appelle les organisations syndicales "
    "à revenir à la table des négociations dès lundi.",
    "Les syndicats jugent ces mesures insuffisantes face à l'inflation et dénoncent la dégradation des conditions "
    "de travail à bord des trains. Une nouvelle réunion est prévue vendredi au siège de l'entreprise à Saint-Denis, "
    "en présence d'un représentant du ministère des Transports.",
    "Le ministre des Transports a demandé aux deux parties de « tout faire pour éviter aux Français un Noël sans "
    "train », tout en rappelant que le droit de grève est garanti par la Constitution. En 2022, un mouvement "
    "similaire avait privé de train près de 200 000 voyageurs.",
]

RATP = [
    "Le trafic du métro parisien sera très perturbé jeudi en raison d'une journée de grève à la RATP contre la "
    "réforme des retraites des agents de conduite, a annoncé la régie mercredi en fin d'après-midi.",
    "Seule une rame sur trois circulera sur la plupart des lignes aux heures de pointe, et les lignes 4 et 13 "
    "seront fermées après 20 heures. Les lignes automatiques 1 et 14 fonctionneront normalement, précise la RATP.",
    "La présidente de la région Île-de-France a dénoncé « une prise d'otage des usagers » et réclamé la mise en "
    "place d'un service minimum garanti, tandis que les syndicats promettent une mobilisation massive devant le "
    "siège de l'entreprise, place Lachambeaudie.",
    "Les usagers sont invités à privilégier le télétravail ou à consulter l'application de la régie avant tout "
    "déplacement. Le mouvement pourrait être reconduit la semaine prochaine selon les organisations syndicales.",
]

DROUGHT = [
    "Le gouvernement a présenté mardi un plan de soutien aux agriculteurs touchés par la sécheresse, avec des aides "
    "d'urgence versées avant la fin de l'année, a indiqué le ministère de l'Agriculture.",
    "Les organisations agricoles ont salué « une première étape » mais réclament des moyens durables pour les "
    "exploitations les plus fragiles, notamment dans le Sud-Ouest et en Occitanie.",
    "Selon les chiffres publiés par la préfecture, plus de trois cents communes sont concernées par des "
    "restrictions d'eau renforcées depuis le début du mois de septembre.",
]


def wire_copy(variant: str) -> tuple[str, list[str]]:
    """The same AFP dispatch as three outlets print it."""
    paras = list(WIRE)
    if variant == "a":
        paras[0] = "Paris, 20 novembre (AFP) - " + paras[0]
        return "Grève à la SNCF : un préavis déposé pour le week-end de Noël", paras
    if variant == "b":
        paras[4] = paras[4].replace("près de 200 000", "quelque 200 000")
        return "SNCF : les contrôleurs menacent de faire grève à Noël", paras + ["(Avec AFP)"]
    paras[1] = paras[1].replace("plus de deux millions", "près de deux millions")
    return "Noël sans train ? Préavis de grève à la SNCF", paras + ["Avec AFP"]


def page(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta property="og:title" content="{title}">'
            f'<meta property="article:published_time" content="{TODAY}"></head>'
            f"<body><header><nav><a href='/'>Accueil</a></nav></header>"
            f"<main><article><h1>{title}</h1>{body}</article></main>"
            f"<footer><a href='/mentions-legales'>Mentions légales</a></footer></body></html>")


class Outlet:
    """A local news site: robots.txt, an RSS feed, article pages."""

    def __init__(self, server: SiteServer, source_id: str, name: str):
        self.server, self.id, self.name = server, source_id, name
        self.links: list[str] = []
        server.add("/robots.txt", Route(body="User-agent: *\n", content_type="text/plain"))
        self._feed()

    def _feed(self) -> None:
        b = self.server.base_url
        items = "".join(f"<item><title>t</title><link>{b}{link}</link></item>" for link in self.links)
        self.server.add("/rss.xml", Route(body=f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
                                               f"<title>{self.name}</title>{items}</channel></rss>",
                                          content_type="application/rss+xml"))

    def publish(self, path: str, title: str, paragraphs: list[str]) -> None:
        self.server.add(path, Route(body=page(title, paragraphs)))
        self.links.append(path)
        self._feed()

    def source(self) -> str:
        return (f"  - id: {self.id}\n    name: {self.name}\n    feeds: [{self.server.base_url}/rss.xml]\n"
                f"    allow: ['-\\d+\\.html$']\n")


@pytest.fixture
def outlets():
    servers = [SiteServer().start() for _ in range(3)]
    try:
        yield [Outlet(servers[0], "quotidien", "Le Quotidien"), Outlet(servers[1], "gazette", "La Gazette"),
               Outlet(servers[2], "hebdo", "Hebdo Plus")]
    finally:
        for s in servers:
            s.stop()


def sources(outlets: list[Outlet]) -> str:
    return "sources:\n" + "".join(o.source() for o in outlets)


class Receiver:
    """A webhook endpoint on 127.0.0.1 recording each POST; answers the given statuses in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.posts: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.posts.append({"path": self.path, "status": status, "headers": dict(self.headers),
                                       "json": json.loads(body)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def delivered(self, topic: str | None = None) -> list[dict]:
        return [p["json"] for p in self.posts if p["status"] == 200 and (topic is None or p["json"]["topic_id"] == topic)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def write_topics(tmp_path, text: str):
    path = tmp_path / "topics.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def webhook_topics(url: str) -> str:
    return f"""\
targets:
  hook:
    type: webhook
    url: {url}
    retries: 0
    timeout: 5
topics:
  - id: sncf
    name: Grève SNCF
    query: '"préavis de grève" AND SNCF'
    targets: [hook]
  - id: greves
    name: Grèves
    query: 'grève AND (SNCF OR RATP) -sécheresse'
    targets: [hook]
"""


def test_wire_story_gives_one_alert_then_one_update_then_nothing(outlets, receiver, crawl, run_veille, tmp_path):
    a, b, c = outlets
    ta, pa = wire_copy("a")
    tb, pb = wire_copy("b")
    a.publish("/societe/greve-sncf-noel-101.html", ta, pa)
    b.publish("/economie/sncf-controleurs-noel-202.html", tb, pb)
    a.publish("/paris/metro-greve-ratp-103.html", "Grève à la RATP : le métro très perturbé jeudi", RATP)
    b.publish("/planete/secheresse-aides-204.html", "Sécheresse : un plan d'aide aux agriculteurs", DROUGHT)
    env = {"VEILLE_TOPICS": str(write_topics(tmp_path, webhook_topics(receiver.url)))}

    first = crawl(sources(outlets), env=env)
    assert first.proc.returncode == 0, first.output[-3000:]
    wire_ids = {r["cluster_id"] for r in first.articles() if "SNCF" in (r["title"] or "")}
    assert len(wire_ids) == 1, "the two wire copies must be one story"
    sncf = receiver.delivered("sncf")
    assert len(sncf) == 1, sncf  # one alert for the story, not one per copy
    assert sncf[0]["kind"] == "new" and sorted(sncf[0]["outlets"]) == ["La Gazette", "Le Quotidien"]
    assert len(sncf[0]["articles"]) == 2
    greves = receiver.delivered("greves")
    assert len(greves) == 2 and {g["kind"] for g in greves} == {"new"}  # two distinct stories, two alerts
    assert sncf[0]["cluster_id"] in {g["cluster_id"] for g in greves}
    assert any("RATP" in g["title"] for g in greves)
    assert len(receiver.posts) == 3
    topics_col = {r["title"]: json.loads(r["topics"]) for r in first.articles()}
    assert topics_col[ta] == ["sncf", "greves"] and topics_col["Sécheresse : un plan d'aide aux agriculteurs"] == []

    # A third outlet carries the story: one "update" naming it (per topic), not a new alert.
    tc, pc = wire_copy("c")
    c.publish("/france/noel-sans-train-305.html", tc, pc)
    receiver.posts.clear()
    second = crawl(sources(outlets), env=env)
    assert second.proc.returncode == 0, second.output[-3000:]
    assert len(receiver.posts) == 2, [p["json"] for p in receiver.posts]
    for alert in receiver.delivered():
        assert alert["kind"] == "update" and alert["new_outlets"] == ["Hebdo Plus"]
        assert alert["cluster_id"] == sncf[0]["cluster_id"]
        assert sorted(alert["outlets"]) == ["Hebdo Plus", "La Gazette", "Le Quotidien"]

    # A re-crawl (a new process: state comes from the store) tells nobody anything again.
    receiver.posts.clear()
    third = crawl(sources(outlets), env=env)
    assert third.proc.returncode == 0
    assert receiver.posts == []

    shown = run_veille("alerts", "--json", env=env)
    sent = [json.loads(line) for line in shown.proc.stdout.splitlines()]
    assert len(sent) == 5 and all(d["status"] == "sent" for s in sent for d in s["deliveries"])
    assert {(s["topic_id"], s["kind"]) for s in sent} == {("sncf", "new"), ("sncf", "update"), ("greves", "new"),
                                                         ("greves", "update")}
    table = run_veille("alerts", "--topic", "sncf", env=env)
    assert "hook: sent" in table.output and "2 alert(s)" in table.output
    stories = run_veille("topics", "test", "sncf", "--json", env=env)
    found = [json.loads(line) for line in stories.proc.stdout.splitlines()]
    assert len(found) == 1 and len(found[0]["articles"]) == 3
    adhoc = run_veille("topics", "test", "grève", "--json", env=env)
    assert len(adhoc.proc.stdout.splitlines()) == 2  # the wire story (3 copies) and the RATP story


def test_receiver_failing_then_ok_gets_the_alert_once(outlets, crawl, run_veille, tmp_path):
    a, b, _ = outlets
    receiver = Receiver(statuses=[500])
    try:
        ta, pa = wire_copy("a")
        a.publish("/societe/greve-sncf-noel-101.html", ta, pa)
        env = {"VEILLE_TOPICS": str(write_topics(tmp_path, webhook_topics(receiver.url).replace(
            "  - id: greves", "  - id: greves\n    enabled: false"))), "VEILLE_ALERTS_RETRY_BASE": "0.5"}
        result = crawl(sources(outlets[:1]), env=env)
        assert result.proc.returncode == 0, result.output[-3000:]
        assert [p["status"] for p in receiver.posts] == [500]
        listing = run_veille("alerts", "--json", env=env)
        [delivery] = json.loads(listing.proc.stdout)["deliveries"]
        assert delivery["status"] == "pending" and "HTTP 500" in delivery["error"], delivery
        assert "1 pending (1 retrying)" in run_veille("alerts", env=env).output
        time.sleep(0.6)
        retry = run_veille("alerts", "deliver", env=env)
        assert retry.proc.returncode == 0 and "sent 1" in retry.output, retry.output
        again = run_veille("alerts", "deliver", env=env)
        assert "sent 0" in again.output
        assert [p["status"] for p in receiver.posts] == [500, 200]
        assert receiver.posts[0]["json"]["alert_id"] == receiver.posts[1]["json"]["alert_id"]
        from crawler.alerts import alert_status

        assert alert_status(result.data) == {**alert_status(result.data), "sent": 1, "pending": 0, "failed": 0}
    finally:
        receiver.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_email_alert_reaches_local_smtp(outlets, crawl, tmp_path):
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        a, b, _ = outlets
        for outlet, variant, path in ((a, "a", "/societe/greve-sncf-noel-101.html"),
                                      (b, "b", "/economie/sncf-controleurs-noel-202.html")):
            title, paras = wire_copy(variant)
            outlet.publish(path, title, paras)
        topics = write_topics(tmp_path, f"""\
targets:
  desk:
    type: email
    to: [desk@example.org]
    sender: veille@example.org
    smtp_host: 127.0.0.1
    smtp_port: {port}
    starttls: false
topics:
  - id: sncf
    name: Grève SNCF
    query: '"préavis de grève" AND SNCF'
    targets: [desk]
""")
        result = crawl(sources(outlets[:2]), env={"VEILLE_TOPICS": str(topics)})
        assert result.proc.returncode == 0, result.output[-3000:]
        assert len(inbox.messages) == 1
        env = inbox.messages[0]
        assert env.rcpt_tos == ["desk@example.org"]
        from email import message_from_bytes
        from email.policy import default

        msg = message_from_bytes(env.original_content, policy=default)
        assert msg["Subject"].startswith("[Veille] Grève SNCF : ")
        canonical = {r["title"] for r in result.articles() if r["is_canonical"]}
        assert any(t in msg["Subject"] for t in canonical), (msg["Subject"], [(r["title"], r["is_canonical"], r["cluster_id"]) for r in result.articles()])
        text = msg.get_content()
        assert "Le Quotidien" in text and "La Gazette" in text
    finally:
        controller.stop()


def test_malformed_topic_query_fails_with_its_line(outlets, crawl, run_veille, tmp_path):
    topics = write_topics(tmp_path, """\
targets:
  console:
    type: log
topics:
  - id: ok
    name: Correct
    query: 'SNCF'
    targets: [console]
  - id: broken
    name: Cassé
    query: '(grève AND SNCF'
    targets: [console]
""")
    env = {"VEILLE_TOPICS": str(topics)}
    listed = run_veille("topics", env=env, check=False)
    assert listed.proc.returncode != 0
    assert f"{topics}:11" in listed.output and "query" in listed.output, listed.output
    outlets[0].publish("/societe/greve-sncf-noel-101.html", *wire_copy("a"))
    result = crawl(sources(outlets[:1]), env=env, check=False)
    assert result.proc.returncode == 2 and f"{topics}:11" in result.output, result.output[-2000:]
    assert outlets[0].server.requests == [], "an invalid topics file stops the crawl before it starts"


# --------------------------------------------------------------------------- the service, without a crawl


def _service(tmp_path, sent):
    from crawler.alerts import AlertService
    from crawler.topics import TopicsFile

    topics = TopicsFile.model_validate({
        "targets": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        "topics": [{"id": "sncf", "name": "Grève SNCF", "query": '"préavis de grève" AND SNCF', "targets": ["hook"]}]})
    service = AlertService(tmp_path / "veille.sqlite3", topics)

    class Capture:
        def send(self, alert):
            sent.append(alert)

    service.outbox.notifier_factory = lambda target: Capture()
    return service


def _article(n: int, outlet: str, cluster: str = "S1", text: str = " ".join(WIRE)) -> dict:
    return {"id": f"a{n}", "url": f"http://x/{n}", "outlet": outlet, "title": f"Titre {n}", "body": text,
            "cluster_id": cluster}


def test_service_folds_a_batch_and_alerts_revisions_that_newly_match(tmp_path):
    sent: list[dict] = []
    service = _service(tmp_path, sent)
    for n, outlet in enumerate(["A", "B", "A"]):
        art = _article(n, outlet)
        service.add(art, service.match(art))
    [alert] = service.flush()
    assert alert["kind"] == "new" and alert["outlets"] == ["A", "B"] and len(alert["articles"]) == 3
    service.outbox.deliver_due()
    assert [a["alert_id"] for a in sent] == ["sncf:S1:1"]
    # The same articles again (a re-crawl, a revision that still matches): nothing.
    for n, outlet in enumerate(["A", "B"]):
        art = _article(n, outlet)
        service.add(art, service.match(art))
    assert service.flush() == []
    # A revision of an article of another story that now matches: a new alert for that story.
    before = _article(7, "C", cluster="S2", text=" ".join(DROUGHT))
    assert service.match(before) == []
    after = {**before, "body": before["body"] + " " + WIRE[0]}
    service.add(after, service.match(after))
    [again] = service.flush()
    assert again["kind"] == "new" and again["cluster_id"] == "S2"
    # A story without a cluster is its own story.
    lone = {**_article(9, "D"), "cluster_id": None}
    service.add(lone, service.match(lone))
    [own] = service.flush()
    assert own["cluster_id"] == "a9"
    service.close()
