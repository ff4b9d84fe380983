"""Demo data (`flask --app run demo seed`): realistic, Japanese, idempotent.

Each step is its own unit of work (app/services/unit.py): users, notices and maintenance,
cards, venues, then every demo booking on its own, so a full slot skips that booking and
keeps the rest. Seeding runs on its own, never inside another unit.
"""
from __future__ import annotations

import os
import random
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import select

from app import clock
from app.clock import JST
from app.extensions import session
from app.models.card import Card
from app.models.maintenance import MaintenanceWindow
from app.models.notice import (AUDIENCE_BOTH, AUDIENCE_RESIDENTS, AUDIENCE_STAFF,
                               IMPORTANCE_IMPORTANT, IMPORTANCE_NORMAL, IMPORTANCE_URGENT,
                               Notice)
from app.models.reservation import (CHANNEL_COUNTER, CHANNEL_PHONE, CHANNEL_WEB, Reservation,
                                    Slot)
from app.models.storage import StoragePlace
from app.models.venue import DateException, Purpose, Venue, VenuePurpose, WeeklyRule
from app.services import booking, cards, desk, discard, notice_numbers, unit
from app.services.accounts import create_user
from app.services.availability import active_offers
from app.services.calendar import ensure_slots, existing_slots, materialise_slots
from app.services.passwords import generate_password

DEMO_USERS = [
    # user ID, 姓, 名, role key
    ("kanri01", "佐藤", "美咲", "ROLE_MANAGER"),
    ("kanri02", "鈴木", "健一", "ROLE_MANAGER"),
    ("madoguchi01", "高橋", "由美", "ROLE_CLERK"),
    ("madoguchi02", "田中", "翔太", "ROLE_CLERK"),
    ("madoguchi03", "伊藤", "さくら", "ROLE_CLERK"),
    ("etsuran01", "渡辺", "浩二", "ROLE_VIEWER"),
    ("etsuran02", "山本", "恵子", "ROLE_VIEWER"),
    ("sysadmin02", "中村", "大輔", "ROLE_SYSADMIN"),
]

# What each role is for, shown by `flask demo seed` and `flask demo accounts` (make run):
# role key, role in Japanese / English, what it does in Japanese / English.
ROLE_GUIDE = [
    ("ROLE_MANAGER", "管理者 / manager",
     "全業務・予約設定・手数料表・還付・お知らせ・操作ログ / every business screen, booking "
     "settings, fee table, refunds, notices, audit trail"),
    ("ROLE_CLERK", "窓口職員 / clerk",
     "受付・申請受付・手数料の収納・交付・納品登録（QR読取）・予約 / desk, applications, fees, "
     "handing over, scanning, bookings"),
    ("ROLE_VIEWER", "閲覧者 / viewer", "一覧の閲覧のみ / read only"),
    ("ROLE_SYSADMIN", "システム管理者 / system administrator",
     "ユーザー・メンテナンス・操作ログ（業務画面なし） / users, maintenance, audit trail "
     "(no business screens)"),
]

DEMO_NOTICES = [
    # title, body, audience, importance, English title and body (residents' notices)
    ("年末年始の窓口休止について",
     "12月29日から1月3日まで、マイナンバーカードの交付・申請窓口はお休みします。"
     "1月4日から通常どおり受け付けます。", AUDIENCE_BOTH, IMPORTANCE_IMPORTANT,
     "Counters closed over the New Year holidays",
     "The counters for collecting and applying for My Number Cards are closed from "
     "29 December to 3 January. They open as usual from 4 January."),
    ("交付通知書（はがき）が届いた方へ",
     "はがきに記載の交付通知書番号と生年月日で、来庁日時をご予約ください。"
     "ご本人確認書類と、お持ちの方は通知カード・住民基本台帳カードをお持ちください。",
     AUDIENCE_RESIDENTS, IMPORTANCE_NORMAL,
     "If you have received the notification postcard",
     "Book your visit with the notice number on the postcard and your birth date. "
     "Bring an identity document and, if you have one, your notification card or Basic "
     "Resident Register card."),
    ("本日の窓口体制", "第2窓口は10時から研修のため閉鎖します。交付は第1・第3窓口で対応してください。",
     AUDIENCE_STAFF, IMPORTANCE_NORMAL, None, None),
    ("J-LISカード管理システムの夜間停止",
     "本日20時以降、J-LIS側システムが停止します。交付前設定は19時30分までに完了してください。",
     AUDIENCE_STAFF, IMPORTANCE_URGENT, None, None),
]
MAINTENANCE_MESSAGE = ("システム更新のため、予約サイトを停止します。",
                       "The booking site is closed for a system update.")

def seed_demo() -> list[str]:
    """Add demo users, notices and an announced maintenance window if missing."""
    out = []
    db = session()
    sm = current_app.appbuilder.sm
    password = os.environ.get("DEMO_PASSWORD") or generate_password()
    created = []
    with unit.transaction(db):  # FAB's add_user commits each user itself, too
        for username, last, first, role_key in DEMO_USERS:
            if sm.find_user(username=username) is None:
                create_user(username, password, [current_app.config[role_key]], first, last,
                            f"{username}@city.example.jp")
                created.append(username)
    if created:
        out.append(f"demo users: {', '.join(created)}")
    else:
        out.append("demo users exist")

    now = clock.now()
    with unit.transaction(db):
        added = seed_notices(db, now)
    out.append(f"demo notices and maintenance: {added} added")
    out.append(seed_cards(db, now))
    out.append(seed_venues(db))
    out.extend(seed_bookings(db, now))
    out.append(seed_intakes(db, now))
    out.append(seed_saved_queries(db))
    out.append(f"demo discard candidates: {discard.refresh(db, now)} found")
    out.extend(accounts_table(password if created else None))
    return out


def accounts_table(password: str | None = None) -> list[str]:
    """Which demo account to try for which role: one line per role, Japanese and English.
    The password is shown when the demo users are made (demo only); afterwards it is the
    one printed then, or DEMO_PASSWORD."""
    password = password or os.environ.get("DEMO_PASSWORD")
    shown = password or "デモ投入時に表示したもの / the one printed when the demo was seeded"
    lines = ["=" * 78,
             "デモ用アカウント / demo accounts  http://127.0.0.1:8080/  (デモ専用 / demo only)",
             f"パスワード（全員共通） / password (all): {shown}",
             "ロール / role: ユーザーID / user IDs"]
    for role_key, role, does in ROLE_GUIDE:
        users = [u for u, _, _, key in DEMO_USERS if key == role_key]
        lines.append(f"  {role}: {', '.join(users)}")
        lines.append(f"      {does}")
    lines.append("  システム管理者 / system administrator: admin (ADMIN_USERNAME), "
                 "パスワードは users ensure-admin が表示 / password printed by users ensure-admin")
    lines.append("住民の予約サイト / residents' site: http://127.0.0.1:8080/reserve/")
    lines.append("=" * 78)
    return lines


def seed_notices(db, now) -> int:
    """Notices for staff and residents, and a maintenance window announced ahead."""
    existing = {n.title: n for n in db.execute(select(Notice)).scalars()}
    added = 0
    for title, body, audience, importance, title_en, body_en in DEMO_NOTICES:
        notice = existing.get(title)
        if notice is None:
            db.add(Notice(title=title, body=body, audience=audience, importance=importance,
                          title_en=title_en, body_en=body_en,
                          starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=60)))
            added += 1
        elif not notice.title_en and title_en:  # seeded before English texts existed
            notice.title_en, notice.body_en = title_en, body_en
    window = db.execute(select(MaintenanceWindow)).scalars().first()
    if window is None:
        start = (now + timedelta(days=10)).replace(hour=1, minute=0, second=0, microsecond=0)
        db.add(MaintenanceWindow(starts_at=start, ends_at=start + timedelta(hours=4),
                                 message=MAINTENANCE_MESSAGE[0],
                                 message_en=MAINTENANCE_MESSAGE[1], created_by="demo"))
        added += 1
    elif window.message == MAINTENANCE_MESSAGE[0] and not window.message_en:
        window.message_en = MAINTENANCE_MESSAGE[1]
    return added


def seed_bookings(db, now) -> list[str]:
    """Bookings to collect cards over the coming two weeks, and two waiting cards left
    unbooked for trying the residents' site."""
    waiting = list(db.execute(select(Card).where(Card.state == cards.NOTICE_SENT)
                              .order_by(Card.id)).scalars())
    tryout = [f"postcard {notice_numbers.display(c.notice_number)} / birth date "
              f"{c.birth_date.isoformat()}" for c in waiting[:2]]
    if db.execute(select(Reservation.id)).first():
        # seeded on an earlier day (`make run` again): today's desk gets its bookings too
        today = 0 if _booked_today(db, now) else seed_today(db, now, waiting[2:22])
        return [f"demo bookings exist; {today} added today",
                "try /reserve/ with: " + "; ".join(tryout)]
    offer = next((o for o in active_offers(db) if o.purpose.code == "kofu"), None)
    if offer is None:
        return ["no venue for demo bookings"]
    with unit.transaction(db):
        slots = [s for s in ensure_slots(db, offer, now.date() + timedelta(days=1),
                                         now.date() + timedelta(days=14))
                 if s.starts_at > now]
    made = 0
    for index, card in enumerate(waiting[2:20]):
        slot = slots[(index * 7) % len(slots)] if slots else None
        if slot is None:
            break
        try:
            with unit.transaction(db):  # rolled back alone when it fails
                booking.book(db, slot, None, card.birth_date, booking.Contact(
                    phone=f"090{index:04d}{5678:04d}", email=None, name=card.name,
                    name_kana=card.name_kana), cards_to_collect=[card],
                    channel=CHANNEL_PHONE if index % 3 == 0 else CHANNEL_WEB, staff=True)
            made += 1
        except Exception:  # a full slot: skip it, demo data only
            continue
    today = seed_today(db, now, waiting[20:40])
    return [f"demo bookings: {made} in the coming two weeks, {today} today",
            "try /reserve/ with: " + "; ".join(tryout)]


def _booked_today(db, now) -> bool:
    start = datetime.combine(now.astimezone(JST).date(), time.min, JST)
    return db.execute(select(Reservation.id).join(Slot, Reservation.slot_id == Slot.id)
                      .where(Slot.starts_at >= start,
                             Slot.starts_at < start + timedelta(days=1))).first() is not None


def seed_today(db, now, spare_cards) -> int:
    """Today's bookings at each venue, whatever the hour the demo is seeded (issue 12, 6):
    made beforehand, spread over the day. Of the slots already begun, visitors arrived, were
    served (no card to hand over) or have not come (late: the desk can mark them 不来庁);
    later ones wait. Early in the day the first visitors came early, so the desk shows each
    state. A day the venues are closed (a weekend, a holiday) is opened at the main venue
    for the demo by a date exception, so a newcomer never finds an empty desk."""
    today = now.astimezone(JST).date()
    _open_today_for_demo(db, today)
    spare = list(spare_cards)
    made = 0
    for offer in active_offers(db):
        with unit.transaction(db):
            slots = _spread(ensure_slots(db, offer, today, today), 8)
        plan = [("arrive", "complete", "late")[index % 3] if slot.starts_at <= now else "wait"
                for index, slot in enumerate(slots)]
        if plan and "arrive" not in plan:  # early in the day: the first came early
            plan[:2] = ["complete", "arrive"][:len(plan)]
        for slot, action in zip(slots, plan):
            family, given = FAMILY[(made * 5) % len(FAMILY)], GIVEN[(made * 3) % len(GIVEN)]
            contact = booking.Contact(phone=f"080{made:04d}1234", name=f"{family[0]}　{given[0]}",
                                      name_kana=f"{family[1]}　{given[1]}")
            channel = (CHANNEL_WEB, CHANNEL_PHONE, CHANNEL_COUNTER)[made % 3]
            if offer.purpose.needs_postcard and not spare:
                break
            booked_at = min(now, slot.starts_at - timedelta(hours=1))
            try:
                with unit.transaction(db):  # rolled back alone when it fails
                    if offer.purpose.needs_postcard:
                        card = spare.pop(0)
                        contact.name, contact.name_kana = card.name, card.name_kana
                        reservation = booking.book(db, slot, None, card.birth_date, contact,
                                                   cards_to_collect=[card], channel=channel,
                                                   staff=True, now=booked_at)
                    else:
                        reservation = booking.book(db, slot, None, date(1960 + made, 4, 1),
                                                   contact, seats=1, channel=channel,
                                                   staff=True, now=booked_at)
            except Exception:  # a full slot: demo data only
                continue
            made += 1
            if action in ("arrive", "complete"):
                arrived_at = min(now, slot.starts_at - timedelta(minutes=5))
                with unit.transaction(db):
                    desk.check_in(db, reservation, now=arrived_at)
                    if action == "complete" and not offer.purpose.needs_postcard:
                        desk.complete(db, reservation,
                                      now=min(now, arrived_at + timedelta(minutes=20)))
    return made


def _spread(slots: list, count: int) -> list:
    """``count`` slots spread over the day (all of them when there are fewer)."""
    if len(slots) <= count:
        return slots
    return [slots[round(i * (len(slots) - 1) / (count - 1))] for i in range(count)]


def _open_today_for_demo(db, today: date) -> None:
    """When no venue opens today, open the main venue for 交付 today (09:00-17:00)."""
    offers = active_offers(db)
    if not offers or any(existing_slots(db, offer, today, today) for offer in offers):
        return
    offer = next((o for o in offers if o.purpose.code == "kofu"), offers[0])
    with unit.transaction(db):
        if any(e.day == today for e in offer.exceptions):
            return
        offer.exceptions.append(DateException(
            day=today, closed=False, starts=time(9), ends=time(17), slot_minutes=30, seats=2,
            note=DEMO_OPENING_NOTE))
        db.flush()
        ensure_slots(db, offer, today, today)


DEMO_OPENING_NOTE = "デモ用の臨時開庁"


# (venue, address, [(purpose code, weekdays, from, to, minutes, seats, last start)])
DEMO_VENUES = [
    ("市役所本庁舎 1階 市民課", "みどり市中央1-1-1", [
        ("kofu", range(5), "09:00", "17:00", 30, 3, "16:30"),
        ("shinsei", range(5), "09:00", "16:00", 60, 2, None),
        ("denshi", range(5), "09:00", "17:00", 30, 1, None),
        ("kofu", [2], "17:00", "20:00", 30, 2, "19:30"),  # Wednesday evenings
    ]),
    ("北部支所", "みどり市北野3-2-1", [("kofu", [1, 3], "09:00", "12:00", 30, 1, None)]),
]
DEMO_PURPOSES = [("kofu", "マイナンバーカードの受け取り（交付）", True),
                 ("shinsei", "マイナンバーカードの申請", False),
                 ("denshi", "電子証明書の更新・新規発行", False)]
# English name, explanation and what to bring, for residents who choose English
PURPOSE_TEXTS_EN = {
    "kofu": ("Collecting your My Number Card",
             "For residents who have received the notification postcard (交付通知書) and come "
             "to collect their card.",
             "The notification postcard (交付通知書)\n"
             "An identity document (one with a photo, such as a driving licence or passport, "
             "or two others, such as a health insurance certificate and a pension book)\n"
             "Your notification card or Basic Resident Register card (if you have one)\n"
             "Your previous My Number Card (when it is replaced or renewed)\n"
             "Decide your PINs before you come (4 digits, and 6 to 16 letters and digits)"),
    "shinsei": ("Applying for a My Number Card",
                "Apply for your card at the counter. We help you take the photo and fill in "
                "the form.",
                "An identity document (one with a photo, or two others)\n"
                "Your notification card or individual number notice (if you have one)"),
    "denshi": ("Renewing or issuing electronic certificates",
               "Renew the electronic certificates on your My Number Card, or have them issued.",
               "Your My Number Card\n"
               "Your PINs (signature: 6 to 16 letters and digits; user authentication: 4 digits)\n"
               "The expiry notice (if you have received it)"),
}
PURPOSE_TEXTS = {
    "kofu": ("「交付通知書」（はがき）が届いた方が、カードを受け取りに来庁する予約です。",
             "交付通知書（はがき）\n"
             "本人確認書類（運転免許証・パスポートなど顔写真付きのもの1点、"
             "または健康保険の資格確認書・年金手帳など2点）\n"
             "通知カード・住民基本台帳カード（お持ちの方）\n"
             "以前のマイナンバーカード（再交付・更新の方）\n"
             "暗証番号（数字4桁と、英数字6〜16文字）を決めてからお越しください"),
    "shinsei": ("窓口でカードを申請する予約です。写真の撮影や申請書の記入もお手伝いします。",
                "本人確認書類（顔写真付きのもの1点、またはそれ以外のもの2点）\n"
                "通知カードまたは個人番号通知書（お持ちの方）"),
    "denshi": ("マイナンバーカードの電子証明書の更新・新規発行の予約です。",
               "マイナンバーカード\n"
               "暗証番号（署名用：英数字6〜16文字、利用者証明用：数字4桁）\n"
               "有効期限通知書（届いている方）"),
}


def seed_venues(db) -> str:
    """Venues open for 交付 on weekdays, and the other purposes; then their slots are made
    ahead (materialise_slots: a unit of its own)."""
    if db.execute(select(Venue.id)).first():
        with unit.transaction(db):  # demo data seeded before English texts existed
            for purpose in db.execute(select(Purpose).where(
                    Purpose.code.in_(PURPOSE_TEXTS_EN), Purpose.name_en.is_(None))).scalars():
                purpose.name_en, purpose.description_en, purpose.what_to_bring_en = \
                    PURPOSE_TEXTS_EN[purpose.code]
        return f"demo venues exist; slots made ahead: {materialise_slots(db)}"
    with unit.transaction(db):
        _add_venues(db)
    return f"demo venues: {len(DEMO_VENUES)}; slots made ahead: {materialise_slots(db)}"


def _add_venues(db) -> None:
    purposes = {}
    for code, name, needs_postcard in DEMO_PURPOSES:
        description, bring = PURPOSE_TEXTS[code]
        name_en, description_en, bring_en = PURPOSE_TEXTS_EN[code]
        purposes[code] = Purpose(code=code, name=name, needs_postcard=needs_postcard,
                                 description=description, what_to_bring=bring,
                                 name_en=name_en, description_en=description_en,
                                 what_to_bring_en=bring_en)
        db.add(purposes[code])

    def hhmm(value):
        return time(*map(int, value.split(":")))

    for name, address, rules in DEMO_VENUES:
        venue = Venue(name=name, address=address, active=True,
                      access_note="駐車場があります。正面入口からお入りください。")
        offers = {}
        for code, weekdays, starts, ends, minutes, seats, last in rules:
            offer = offers.get(code)
            if offer is None:
                offer = offers[code] = VenuePurpose(
                    venue=venue, purpose=purposes[code], opens_days_ahead=60,
                    closes_minutes_before=24 * 60, max_party=4,
                    last_start=hhmm(last) if last else None)
                db.add(offer)
            elif last:
                offer.last_start = hhmm(last)
            for weekday in weekdays:
                offer.rules.append(WeeklyRule(weekday=weekday, starts=hhmm(starts),
                                              ends=hhmm(ends), slot_minutes=minutes,
                                              seats=seats))


FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("田中", "タナカ"),
          ("伊藤", "イトウ"), ("渡辺", "ワタナベ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
          ("小林", "コバヤシ"), ("加藤", "カトウ"), ("吉田", "ヨシダ"), ("山田", "ヤマダ"),
          ("佐々木", "ササキ"), ("松本", "マツモト"), ("井上", "イノウエ"), ("木村", "キムラ")]
GIVEN = [("翔太", "ショウタ"), ("陽菜", "ヒナ"), ("蓮", "レン"), ("結衣", "ユイ"),
         ("大輔", "ダイスケ"), ("美咲", "ミサキ"), ("健一", "ケンイチ"), ("恵子", "ケイコ"),
         ("浩二", "コウジ"), ("由美", "ユミ"), ("悠真", "ユウマ"), ("さくら", "サクラ"),
         ("和子", "カズコ"), ("茂", "シゲル"), ("花子", "ハナコ"), ("一郎", "イチロウ")]
TOWNS = ["中央", "本町", "緑ヶ丘", "桜台", "東町", "西原", "南台", "北野"]
# (share, visit mode, path of states after 納品, days ago the path started)
CARD_MIX = [
    (30, "K", []), (30, "K", ["setup"]), (60, "K", ["setup", "notice_sent"]),
    (25, "K", ["setup", "notice_sent", "reserved"]),
    (60, "K", ["setup", "notice_sent", "handed_over"]),
    (10, "K", ["setup", "notice_sent", "returned"]),
    (10, "K", ["setup", "notice_sent", "renotified"]),
    (6, "K", ["setup", "notice_sent", "on_hold"]),
    (12, "K", ["setup", "notice_sent"], 400),  # past the deadline: discard candidates
    (5, "K", ["setup", "notice_sent", "discarded"], 420),
    (15, "S", []), (15, "S", ["setup"]), (20, "S", ["setup", "mailed"]),
    (25, "S", ["setup", "mailed", "handed_over"]), (4, "S", ["setup", "mailed", "returned"]),
]


def seed_cards(db, now) -> str:
    """Storage places and about 330 cards in every state, both visit modes (one unit)."""
    if db.execute(select(Card.id)).first():
        return "demo cards exist"
    with unit.transaction(db):
        serial = _add_cards(db, now)
    return f"demo cards: {serial} in the ledger"


def _add_cards(db, now) -> int:
    if not db.execute(select(StoragePlace.id)).first():
        order = 0
        for safe in "AB":
            for shelf in range(1, 4):
                for box in range(1, 5):
                    order += 1
                    db.add(StoragePlace(code=f"金庫{safe}-棚{shelf}-箱{box:02d}", capacity=40,
                                        sort_key=order, active=True))
        db.flush()
    rng = random.Random(20261127)
    serial = 0
    for entry in CARD_MIX:
        share, mode, path = entry[0], entry[1], entry[2]
        started = entry[3] if len(entry) > 3 else rng.randint(5, 60)
        for _ in range(share):
            serial += 1
            family, given = rng.choice(FAMILY), rng.choice(GIVEN)
            born = date(rng.randint(1935, 2020), rng.randint(1, 12), rng.randint(1, 28))
            fields = {
                "application_id": f"{rng.randint(10**22, 10**23 - 1)}",
                "shipment_number": f"JL{now:%Y}{rng.randint(1, 30):04d}",
                "manufacture_number": f"{rng.randint(10**15, 10**16 - 1)}",
                "name": f"{family[0]}　{given[0]}", "name_kana": f"{family[1]}　{given[1]}",
                "postal_code": f"123-{rng.randint(0, 9999):04d}",
                "address": f"みどり市{rng.choice(TOWNS)}{rng.randint(1, 5)}丁目"
                           f"{rng.randint(1, 30)}番{rng.randint(1, 20)}号",
                "birth_date": born, "has_sign_cert": (now.date() - born).days > 15 * 365,
                "has_auth_cert": True, "visit_mode": mode,
            }
            card = cards.new_card(db, fields)
            at = now - timedelta(days=started)
            card.received_at = at
            card.events[0].at = at
            for state in path:
                at += timedelta(days=rng.randint(1, 4))
                cards._apply(db, card, state, None, "demo", at)
            if card.state == cards.DISCARDED:
                card.discard_reason = "保管期限経過"
            db.flush()
    return serial


# --- applications, fees and a scanned form (issue 13) ------------------------------------
DEMO_CLERK = "madoguchi01"
# (kind, reissue reason, method, name, kana, birth date, what happens to the fee)
DEMO_INTAKES = [
    ("new", None, "counter", "中村　大輔", "ナカムラ　ダイスケ", date(1990, 5, 12), None),
    ("reissue", "lost", "counter", "小林　真由美", "コバヤシ　マユミ", date(1975, 11, 3), "paid"),
    ("express", None, "counter", "加藤　健太", "カトウ　ケンタ", date(2001, 2, 28), "charged"),
    ("reissue", "disaster", "support", "吉田　幸子", "ヨシダ　サチコ", date(1948, 8, 20), "free"),
    ("cert_renewal", None, "counter", "山口　誠", "ヤマグチ　マコト", date(1969, 1, 9), None),
]
DEMO_OUTREACH = [("outreach", "吉川　春子", "ヨシカワ　ハルコ", date(1938, 4, 2)),
                 ("outreach", "森　正夫", "モリ　マサオ", date(1935, 10, 15))]


def _demo_form_pdf(name: str) -> bytes:
    """A two-page scanned application form for the demo (drawn, not a real form)."""
    from io import BytesIO

    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 40)
    except OSError:
        font = ImageFont.load_default()
    pages = []
    for number, title in enumerate(("個人番号カード交付申請書（デモ）", "本人確認書類の写し（デモ）"), 1):
        page = Image.new("L", (1240, 1754), 255)
        draw = ImageDraw.Draw(page)
        draw.rectangle((60, 60, 1180, 1694), outline=0, width=4)
        draw.text((100, 100), title, fill=0, font=font)
        draw.text((100, 220), f"氏名　{name}", fill=0, font=font)
        for line in range(8):
            draw.line((100, 360 + line * 140, 1140, 360 + line * 140), fill=120, width=2)
        draw.text((1000, 1620), f"{number} / 2", fill=0, font=font)
        pages.append(page)
    out = BytesIO()
    pages[0].save(out, format="PDF", save_all=True, append_images=pages[1:], resolution=150)
    return out.getvalue()


def seed_intakes(db, now) -> str:
    """Today's applications at the main venue (one paid reissue, one express fee still due,
    one free reissue after a disaster), an outreach session at a school with its two
    applications, one application whose card is already in the ledger, and a scanned form.
    Skipped when any application exists."""
    from app.models.intake import Intake
    from app.services import documents, fees, intake

    if db.execute(select(Intake.id).limit(1)).first():
        return "demo applications exist"
    venue = db.execute(select(Venue).where(Venue.active.is_(True))
                       .order_by(Venue.id)).scalars().first()
    if venue is None:
        return "demo applications: no venue"
    clerk = cards.CardActor(DEMO_CLERK, frozenset({current_app.config["ROLE_CLERK"]}))
    today = now.astimezone(JST).date()
    for kind, valid_from, card_part in (("reissue", date(2016, 1, 1), 800),
                                        ("express", date(2024, 12, 2), 1800)):
        if fees.schedule_row(db, kind, today) is None:  # as migration 0013 seeds it
            with unit.transaction(db):
                fees.add_row(db, kind=kind, valid_from=valid_from, card_amount=card_part,
                             cert_amount=200, actor=cards.SYSTEM, today=today)
    identity_ok = {"identity": "one_a", "collector": "self"}
    serial = 70000
    taken = []
    for index, (kind, reason, method, name, kana, birth, fee) in enumerate(DEMO_INTAKES):
        serial += 1
        values = dict(application_id=f"{serial:023d}", method=method, kind=kind,
                      reissue_reason=reason, visit_mode="K", name=name, name_kana=kana,
                      birth_date=birth.isoformat(), postal_code="123-4567",
                      address=f"みどり市中央{index + 1}-2-3", phone=f"090{index:04d}5678",
                      wants_sign_cert="1", wants_auth_cert="1", photo="taken",
                      venue_id=venue.id, identity_check=identity_ok,
                      taken_at=now - timedelta(minutes=30 * (len(DEMO_INTAKES) - index)))
        application = intake.create_intake(db, values, actor=clerk, now=values["taken_at"])
        taken.append(application)
        if fee:
            fees.charge(db, application, actor=clerk, venue_id=venue.id, now=now)
        if fee == "paid":
            fees.pay(db, application, actor=clerk, venue_id=venue.id, now=now, tendered=5000)
    outreach = intake.create_session(db, dict(
        day=(now.astimezone(JST).date() - timedelta(days=1)).isoformat(), site_kind="school",
        site_name="みどり市立第一小学校（保護者会）", address="みどり市北野1-1",
        staff="高橋　由美、田中　翔太"), actor=clerk)
    for method, name, kana, birth in DEMO_OUTREACH:
        serial += 1
        intake.create_intake(db, dict(
            application_id=f"{serial:023d}", method=method, outreach_session_id=outreach.id,
            kind="new", visit_mode="S", name=name, name_kana=kana,
            birth_date=birth.isoformat(), address="みどり市北野2-5", wants_sign_cert="",
            wants_auth_cert="1", photo="taken", identity_check=identity_ok,
            taken_at=now - timedelta(days=1)), actor=clerk, now=now - timedelta(days=1))
    card = db.execute(select(Card).order_by(Card.id)).scalars().first()
    if card is not None:  # an application typed in after its card arrived: linked by ID
        intake.create_intake(db, dict(
            application_id=card.application_id, method="counter", kind="new",
            visit_mode=card.visit_mode, name=card.name, name_kana=card.name_kana,
            birth_date=card.birth_date.isoformat(), venue_id=venue.id,
            wants_sign_cert="1", wants_auth_cert="1", photo="brought",
            identity_check=identity_ok), actor=clerk, now=now - timedelta(days=40))
    with unit.transaction(db):
        documents.upload(db, taken[1].id, "application_form",
                         [("申請書_スキャン.pdf", _demo_form_pdf(taken[1].name))], actor=clerk)
    return f"demo applications: {len(taken) + len(DEMO_OUTREACH) + (card is not None)}"


# --- a shared saved query of the extraction screen (issue 14 §2) -------------------------
DEMO_QUERY_OWNER = "kanri01"  # a demo 管理者: only managers share queries
DEMO_QUERIES = [
    ("受取待ち6か月以上のカード", {
        "subject": "cards", "join": "and",
        "groups": [{"op": "and", "conditions": [
            # relative: still "six months before today" whenever it is rerun
            {"field": "received_at", "op": "older_than", "n": 6, "unit": "months"},
            {"field": "state", "op": "in", "values": [
                "received", "setup", "notice_sent", "reserved", "renotified", "returned",
                "on_hold"]}]}],
        "columns": ["application_id", "notice_number", "name", "name_kana", "state",
                    "storage_place", "received_at"],
        "order": [{"field": "received_at", "desc": False}]}),
]


def seed_saved_queries(db) -> str:
    """Saved conditions shared with the office: cards not handed over that were received
    more than six months ago. Skipped when a shared query of that name exists."""
    from app.models.extraction import SavedQuery
    from app.services import extraction

    manager = cards.CardActor(DEMO_QUERY_OWNER,
                              frozenset({current_app.config["ROLE_MANAGER"]}))
    added = 0
    for name, definition in DEMO_QUERIES:
        exists = db.execute(select(SavedQuery.id).where(SavedQuery.name == name,
                                                        SavedQuery.shared.is_(True))).first()
        if exists:
            continue
        extraction.save_query(db, definition, name, actor=manager, shared=True)
        added += 1
    return f"demo saved queries: {added} added" if added else "demo saved queries exist"
