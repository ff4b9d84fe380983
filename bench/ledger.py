"""The card ledger at 3,000 and 300,000 cards (issue 14 §3; owed since issue 3).

One throwaway database per size and engine (SQLite in a temporary file; PostgreSQL when
the server on 127.0.0.1:5432 answers, in databases made for the run and dropped after it),
filled with 3,000 and with 300,000 cards. Cards are inserted with SQLAlchemy Core in chunks
(no audit rows: this measures reading; the tally triggers of migration 0015 count them as
they would any insert), with names and kana spread like a city's (20 family names × 20
given names), birth dates, states and delivery times spread over five years. PostgreSQL
gets ``VACUUM ANALYZE`` after the fill, as autovacuum gives a ledger filled over years.

Each page is asked for through the Flask test client by a signed-in clerk, as the screen
asks for it (FAB's list with its filters, first page of 50, newest delivery first):

- the list's first page;
- search by kana prefix (フリガナ starts with ヤマダ: 1 card in 20);
- search by 申請書ID (equal);
- search by name contains (氏名 contains 花: 1 card in 20).

The sizes are measured alternately, request by request (3,000 then 300,000, again and
again), so the other work on the machine weighs on both alike. Printed: the median of
BENCH_LEDGER_REPEAT runs (15) at each size and the ratio. The goal of issue 14 is at most
1.5× for the first three as the ledger grows 100-fold; 'contains' is reported as it is
(docs/cards.md "台帳の規模と速さ"). BENCH_LEDGER_SIZES=3000,300000 sets the sizes.
"""
from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta

REPEAT = int(os.environ.get("BENCH_LEDGER_REPEAT", "15"))
SIZES = tuple(int(n) for n in os.environ.get("BENCH_LEDGER_SIZES", "3000,300000").split(","))
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
          ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
          ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
          ("佐々木", "ササキ"), ("山口", "ヤマグチ"), ("松本", "マツモト"), ("井上", "イノウエ"),
          ("木村", "キムラ"), ("林", "ハヤシ"), ("斎藤", "サイトウ"), ("清水", "シミズ")]
GIVEN = [("翔太", "ショウタ"), ("陽菜", "ヒナ"), ("蓮", "レン"), ("結衣", "ユイ"),
         ("大輔", "ダイスケ"), ("花子", "ハナコ"), ("健一", "ケンイチ"), ("美咲", "ミサキ"),
         ("誠", "マコト"), ("幸子", "サチコ"), ("浩二", "コウジ"), ("恵子", "ケイコ"),
         ("太郎", "タロウ"), ("由美", "ユミ"), ("正夫", "マサオ"), ("春子", "ハルコ"),
         ("健太", "ケンタ"), ("真由美", "マユミ"), ("大翔", "ヒロト"), ("さくら", "サクラ")]
STATES = ["received", "setup", "notice_sent", "notice_sent", "reserved", "handed_over",
          "handed_over", "handed_over", "returned", "renotified"]
PASSWORD = "Bench-pass-2026-ok"


def _databases(label: str) -> list[tuple[str | None, object]]:
    """(url, cleanup) per size on one engine; (None, why) when it is not here."""
    if label == "SQLite":
        folder = tempfile.mkdtemp(prefix="mnc-ledger-")
        return [(f"sqlite:///{folder}/ledger_{n}.db", lambda: shutil.rmtree(folder, True))
                for n in SIZES]
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        found = []
        for size in SIZES:
            name = f"bench_ledger_{os.getpid()}_{size}"
            with admin.connect() as connection:
                connection.execute(text(f"CREATE DATABASE {name}"))

            def drop(name=name):
                with admin.connect() as connection:
                    connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

            found.append((PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop))
        return found
    except Exception as error:  # no server here: SQLite only, said in the table
        return [(None, str(error).splitlines()[0][:60])]


def _app(url: str, instance: str):
    from app import create_app
    from app.cli import init_database

    now = datetime(2026, 12, 1, 10, 0).astimezone()  # a Tuesday inside the staff hours
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance,
                      "CLOCK": lambda: now, "SESSION_COOKIE_SECURE": False,
                      "IDENTITY_IP_ATTEMPTS": 100000000,
                      "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    with app.app_context(), contextlib.redirect_stderr(io.StringIO()):
        init_database()
        from app.services.accounts import create_user

        create_user("benchclerk", PASSWORD, [app.config["ROLE_CLERK"]], "太郎", "試験",
                    "benchclerk@example.jp")
        app.appbuilder.session.remove()
    return app


def _fill(app, start: int, stop: int, rng: random.Random) -> None:
    """Cards start..stop-1 with Core inserts in chunks (one transaction a chunk)."""
    from sqlalchemy import insert

    from app.models.card import Card

    table = Card.__table__
    first = datetime(2021, 12, 1, 9, 0).astimezone()
    with app.app_context():
        engine = app.appbuilder.session.get_bind()
        for low in range(start, stop, 10_000):
            rows = []
            for n in range(low, min(stop, low + 10_000)):
                family, given = rng.choice(FAMILY), rng.choice(GIVEN)
                rows.append({
                    "application_id": f"{n + 10**22:023d}", "name": f"{family[0]}　{given[0]}",
                    "name_kana": f"{family[1]}　{given[1]}",
                    "birth_date": date(1930, 1, 1) + timedelta(days=rng.randrange(30000)),
                    "has_sign_cert": True, "has_auth_cert": True, "visit_mode": "K",
                    "state": rng.choice(STATES), "discard_hold": False,
                    "received_at": first + timedelta(minutes=n * 5)})
            with engine.begin() as connection:
                connection.execute(insert(table), rows)
        if engine.dialect.name == "postgresql":
            # What autovacuum does to a ledger filled over the years: statistics for the
            # planner and the visibility map that lets a count read the index alone.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE card")
        app.appbuilder.session.remove()


def _client(app):
    import re

    client = app.test_client()
    html = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    response = client.post("/login/", data={"username": "benchclerk", "password": PASSWORD,
                                            "csrf_token": token})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


def _pages(size: int) -> list[tuple[str, str]]:
    target = f"{size // 2 + 10**22:023d}"  # a card in the middle of the ledger
    return [("list, first page", "/cardmodelview/list/"),
            ("kana prefix (ヤマダ)", "/cardmodelview/list/?_flt_0_name_kana=ヤマダ"),
            ("申請書ID (equal)", f"/cardmodelview/list/?_flt_3_application_id={target}"),
            ("name contains (花)", "/cardmodelview/list/?_flt_2_name=花")]


def _alternately(clients: list, paths: list[str]) -> list[float]:
    """The median time of each (client, path), asked for in turn."""
    for client, path in zip(clients, paths):
        for _ in range(3):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
    runs: list[list[float]] = [[] for _ in clients]
    for _ in range(REPEAT):
        for index, (client, path) in enumerate(zip(clients, paths)):
            started = time.perf_counter()
            client.get(path)
            runs[index].append(time.perf_counter() - started)
    return [statistics.median(r) for r in runs]


def bench_ledger(rows: list) -> None:
    rows.append(("engine", "page", *[f"{n:,} cards" for n in SIZES], "ratio", "goal"))
    for label in ("SQLite", "PostgreSQL"):
        databases = _databases(label)
        if databases[0][0] is None:
            rows.append((label, f"not measured: {databases[0][1]}", *[""] * len(SIZES), "",
                         ""))
            continue
        instances = [tempfile.mkdtemp(prefix="mnc-ledger-instance-") for _ in SIZES]
        apps = []
        try:
            for size, (url, _cleanup), instance in zip(SIZES, databases, instances):
                app = _app(url, instance)
                _fill(app, 0, size, random.Random(13))
                apps.append(app)
            clients = [_client(app) for app in apps]
            pages = [_pages(size) for size in SIZES]
            for index, (name, _path) in enumerate(pages[0]):
                times = _alternately(clients, [p[index][1] for p in pages])
                ratio = times[-1] / times[0]
                goal = "≤ 1.5×" if index < 3 else "(reported)"
                rows.append((label if index == 0 else "", name,
                             *[f"{t * 1000:.1f} ms" for t in times], f"{ratio:.2f}×", goal))
        finally:
            for app in apps:
                with app.app_context():
                    app.appbuilder.session.remove()
                    app.appbuilder.session.get_bind().dispose()
            for instance in instances:
                shutil.rmtree(instance, ignore_errors=True)
            for _url, cleanup in databases:
                cleanup()
