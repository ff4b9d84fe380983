"""Demo data (`flask --app run demo seed`): realistic, Japanese, idempotent."""
from __future__ import annotations

import os
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from app import clock
from app.extensions import session
from app.models.maintenance import MaintenanceWindow
from app.models.notice import (AUDIENCE_BOTH, AUDIENCE_RESIDENTS, AUDIENCE_STAFF,
                               IMPORTANCE_IMPORTANT, IMPORTANCE_NORMAL, IMPORTANCE_URGENT,
                               Notice)
from app.services.accounts import create_user

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

DEMO_NOTICES = [
    ("年末年始の窓口休止について",
     "12月29日から1月3日まで、マイナンバーカードの交付・申請窓口はお休みします。"
     "1月4日から通常どおり受け付けます。", AUDIENCE_BOTH, IMPORTANCE_IMPORTANT),
    ("交付通知書（はがき）が届いた方へ",
     "はがきに記載の予約用番号と生年月日で、来庁日時をご予約ください。"
     "ご本人確認書類と、お持ちの方は通知カード・住民基本台帳カードをお持ちください。",
     AUDIENCE_RESIDENTS, IMPORTANCE_NORMAL),
    ("本日の窓口体制", "第2窓口は10時から研修のため閉鎖します。交付は第1・第3窓口で対応してください。",
     AUDIENCE_STAFF, IMPORTANCE_NORMAL),
    ("J-LISカード管理システムの夜間停止",
     "本日20時以降、J-LIS側システムが停止します。交付前設定は19時30分までに完了してください。",
     AUDIENCE_STAFF, IMPORTANCE_URGENT),
]


def seed_demo() -> list[str]:
    """Add demo users, notices and an announced maintenance window if missing."""
    out = []
    db = session()
    sm = current_app.appbuilder.sm
    password = os.environ.get("DEMO_PASSWORD")
    generated = not password
    if generated:
        from app.cli import _generate_password

        password = _generate_password()
    created = []
    for username, last, first, role_key in DEMO_USERS:
        if sm.find_user(username=username) is None:
            create_user(username, password, [current_app.config[role_key]], first, last,
                        f"{username}@city.example.jp")
            created.append(username)
    if created:
        out.append(f"demo users: {', '.join(created)} (password: {password})")
    else:
        out.append("demo users exist")

    now = clock.now()
    existing = set(db.execute(select(Notice.title)).scalars())
    added = 0
    for title, body, audience, importance in DEMO_NOTICES:
        if title not in existing:
            db.add(Notice(title=title, body=body, audience=audience, importance=importance,
                          starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=60)))
            added += 1
    if not db.execute(select(MaintenanceWindow)).first():
        start = (now + timedelta(days=10)).replace(hour=1, minute=0, second=0, microsecond=0)
        db.add(MaintenanceWindow(starts_at=start, ends_at=start + timedelta(hours=4),
                                 message="システム更新のため、予約サイトを停止します。",
                                 created_by="demo"))
        added += 1
    db.commit()
    out.append(f"demo notices and maintenance: {added} added")
    return out
