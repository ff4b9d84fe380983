"""Write the file and column reference of docs/data-export.md from the models
(`python scripts/data_export_doc.py`; run it again after a migration: the test
tests/unit/test_migration_export.py fails while a table or column is missing from the doc).

The part of the document above the marker line is kept as written; everything below it is
generated: per table its file, what it holds (Japanese and English), and per column its
type, NULL, key or reference and meaning (Japanese and English), then the table's CHECK
rules (the allowed values).
"""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MARKER = "<!-- 以下は scripts/data_export_doc.py が生成 / generated below by scripts/data_export_doc.py -->"

TABLES = {
    "ab_group": ("利用者グループ（FAB。本製品では未使用）", "User groups (Flask-AppBuilder; unused by the product)"),
    "ab_permission": ("権限の種類（FAB の権限カタログ。`flask init` が作成）", "Permission kinds (FAB's catalogue, made by `flask init`)"),
    "ab_register_user": ("利用者の自己登録申請（FAB。本製品では未使用）", "Self-registration requests (FAB; unused)"),
    "ab_role": ("ロール（システム管理者・管理者・窓口職員・閲覧者・Public）", "Roles (system administrator, manager, clerk, viewer, Public)"),
    "ab_user": ("職員アカウント", "Staff accounts"),
    "ab_view_menu": ("権限の対象となる画面・メニュー（FAB の権限カタログ）", "Screens and menus permissions apply to (FAB's catalogue)"),
    "audit_log": ("操作ログ（HMAC によるハッシュチェーン）", "Audit trail (an HMAC hash chain)"),
    "card_tally": ("状態別・来庁区分別のカード枚数（card のトリガーが維持する集計）", "Cards per state and visit mode (kept by triggers on card)"),
    "export_job": ("抽出画面のバックグラウンド出力", "Background exports of the extraction screen"),
    "fee_schedule": ("再交付手数料の料金表（適用開始日ごと）", "Reissue fee schedule (by date it applies from)"),
    "maintenance_window": ("予約サイトの計画停止のお知らせ", "Announced maintenance windows of the booking site"),
    "notice": ("お知らせ（職員向け・住民向け）", "Notices (to staff or residents)"),
    "outreach_session": ("出張申請の実施記録", "Outreach application sessions (schools, companies, ...)"),
    "purpose": ("用件（交付・申請など）", "Visit purposes (collection, application, ...)"),
    "receipt_counter": ("年度ごとの領収書番号の最終値", "Last receipt number per fiscal year"),
    "saved_query": ("抽出画面の保存した条件", "Saved queries of the extraction screen"),
    "site_setting": ("画面で変更する役所の設定（export_policy: エクスポートの暗号化）",
                     "Office settings changed on a screen (export_policy: encryption of exports)"),
    "scan_batch": ("交付対象者一覧の QR 読取の一括登録", "Batches of scanned QR codes of the issuance list"),
    "storage_place": ("カードの保管場所（金庫・棚・箱）", "Card storage places (safe, shelf, box)"),
    "throttle": ("予約サイトの試行回数制限（キーはハッシュ）", "Attempt limits of the booking site (hashed keys)"),
    "venue": ("会場（窓口）", "Venues (counters)"),
    "ab_api_key": ("API キー（FAB。本製品では未使用）", "API keys (FAB; unused)"),
    "ab_group_role": ("グループとロールの対応（FAB）", "Groups to roles (FAB)"),
    "ab_permission_view": ("権限と画面の組（FAB の権限カタログ）", "Permission on a view (FAB's catalogue)"),
    "ab_user_group": ("利用者とグループの対応（FAB）", "Users to groups (FAB)"),
    "ab_user_role": ("職員アカウントとロールの対応", "Staff accounts to roles"),
    "card": ("カード台帳（1 行が 1 枚のマイナンバーカード）", "The card ledger (one row per My Number Card)"),
    "daily_close": ("窓口の日次締め（現金の照合）", "Daily close of a counter (cash count)"),
    "venue_purpose": ("会場ごとに受け付ける目的と予約の条件", "Purposes a venue offers and their booking rules"),
    "ab_permission_view_role": ("ロールに与えた権限（FAB）", "Permissions given to roles (FAB)"),
    "card_event": ("カードの状態・保管場所の履歴", "History of a card's states and places"),
    "date_exception": ("特定日の休止・時間変更", "Closures or changed hours on a given day"),
    "scan_item": ("一括登録の中の QR 1 件", "One scanned QR code of a batch"),
    "slot": ("時間枠（開始時刻ごとの席数と予約済み数）", "Bookable slots (seats and seats taken per start time)"),
    "weekly_rule": ("曜日ごとの受付時間と枠の長さ", "Weekly opening hours and slot length"),
    "hold": ("予約手続き中の席の仮押さえ（数分で失効）", "Seats held during booking (lapse in minutes)"),
    "reservation": ("来庁予約", "Visit bookings"),
    "booking_event": ("予約の変更履歴（集計用）", "History of booking changes (for statistics)"),
    "intake": ("申請受付（窓口・出張）", "Applications taken (counter, outreach)"),
    "outbox": ("住民へのメール（変更と同じ取引で記録し後で送信）", "Mails to residents (queued with the change, sent later)"),
    "reservation_person": ("予約で受け取るカード（1 予約に複数人）", "Cards to collect in a booking (several persons)"),
    "fee_entry": ("手数料の請求・収納・還付", "Fee charges, payments and refunds"),
    "intake_document": ("申請受付の添付書類（スキャン）の説明", "Scanned documents of an application (description)"),
    "document_blob": ("添付書類の暗号化されたデータ", "The encrypted bytes of a document"),
    "discard_candidate": ("廃棄候補（最後の更新で見つかったカード。毎晩と「今すぐ更新」で作り直す）",
                          "Discard candidates as last found (rebuilt nightly and by 「今すぐ更新」)"),
    "stored_file": ("共有ファイル置き場のファイル（抽出・暗号化 ZIP・取込のファイル。どのアプリサーバーからも取り出せる一時ファイル）",
                    "Files of the shared file store (extraction exports, encrypted ZIPs, imported files: temporary files any app server can serve)"),
    "stored_file_chunk": ("共有ファイル置き場のファイルの中身（約 1 MiB ずつ）",
                          "Content of a stored file, in pieces of about 1 MiB"),
    "ledger_import_job": ("既存データ取込の画面の処理（取り込むファイルごとに 1 行。ファイルと報告は stored_file）",
                          "Jobs of the ledger import screen (one row per uploaded file; the file and reports are in stored_file)"),
    "job_run": ("ワーカーの定期処理の実行記録（処理と期間ごとに 1 行）",
                "Runs of the worker's scheduled jobs (one row per job and period)"),
}

# Meaning of a column: "table.column" first, then the column name alone.
COLUMNS = {
    "id": ("行の ID（主キー、整数）", "Row ID (primary key, integer)"),
    "name": ("名称", "Name"),
    "label": ("表示名", "Label"),
    "description": ("説明", "Description"),
    "first_name": ("名", "First name"),
    "last_name": ("姓", "Last name"),
    "username": ("ユーザーID", "User ID"),
    "password": ("パスワードのハッシュ（平文ではない）", "Password hash (never the password)"),
    "email": ("メールアドレス", "E-mail address"),
    "registration_date": ("登録申請日時", "Registration time"),
    "registration_hash": ("登録確認用のハッシュ", "Registration confirmation hash"),
    "active": ("有効（true）／無効（false）", "In use (true) or not (false)"),
    "last_login": ("最終ログイン日時", "Last sign-in"),
    "login_count": ("ログイン回数", "Number of sign-ins"),
    "fail_login_count": ("連続ログイン失敗回数", "Consecutive failed sign-ins"),
    "created_on": ("作成日時（FAB、オフセットなし）", "Created (FAB, no offset)"),
    "changed_on": ("更新日時（FAB、オフセットなし）", "Changed (FAB, no offset)"),
    "created_by_fk": ("作成した職員", "Staff who created it"),
    "changed_by_fk": ("更新した職員", "Staff who changed it"),
    "locked_at": ("アカウントをロックした日時", "When the account was locked"),
    "locked_until": ("ロック解除予定日時", "Locked until"),
    "lock_count": ("ロックの回数（回数に応じて長くなる）", "Number of locks (each longer)"),
    "session_generation": ("セッション世代（パスワード変更等で増え、古いセッションを無効化）", "Session generation (raised to end old sessions)"),
    "created_at": ("作成日時", "Created at"),
    "updated_at": ("更新日時", "Updated at"),
    "user_id": ("職員アカウント", "Staff account"),
    "ip": ("接続元 IP アドレス", "Client IP address"),
    "action": ("操作の種類（create, update, delete, login, export, import ...）", "Kind of action (create, update, delete, login, export, import ...)"),
    "target_table": ("対象のテーブル（または出力の種類）", "Table concerned (or kind of export)"),
    "target_id": ("対象の行の ID（文字列）", "ID of the row concerned (text)"),
    "changes": ("変更内容・詳細（JSON 文字列）", "Changes or detail (JSON text)"),
    "prev_hash": ("前の記録の row_hash（最初は 0 が 64 個）", "row_hash of the previous record (64 zeros first)"),
    "row_hash": ("この記録の HMAC-SHA256（前の記録のハッシュを含む）", "HMAC-SHA256 of this record (chained to the previous one)"),
    "visit_mode": ("来庁区分（K: 交付時来庁方式、S: 申請時来庁方式）", "Visit mode (K: visit to collect, S: visit to apply)"),
    "state": ("状態（下の CHECK の値、またはアプリの定義: docs/cards.md 等）", "State (values in the CHECK below, or as defined by the application: docs/cards.md ...)"),
    "cards": ("カード枚数", "Number of cards"),
    "token": ("ランダムな識別子", "Random identifier"),
    "owner": ("作成した職員のユーザーID", "User ID of the owner"),
    "subject": ("対象（カード・予約など）", "Subject (cards, bookings ...)"),
    "definition": ("条件（JSON 文字列）", "Conditions (JSON text)"),
    "format": ("形式（csv, xlsx）", "Format (csv, xlsx)"),
    "encoding": ("文字コード", "Character encoding"),
    "on_unmappable": ("変換できない文字の扱い", "What to do with unmappable characters"),
    "replacement": ("置換文字", "Replacement character"),
    "rows_total": ("全件数", "Total rows"),
    "rows_written": ("書き出した件数", "Rows written"),
    "replaced": ("置換した文字数", "Characters replaced"),
    "file_name": ("サーバー上のファイル名", "File name on the server"),
    "download_name": ("ダウンロード時のファイル名", "File name of the download"),
    "error": ("失敗の理由", "Why it failed"),
    "heartbeat_at": ("最後に進捗を報告した日時", "Last progress report"),
    "finished_at": ("完了日時", "Finished at"),
    "downloaded_at": ("ダウンロード日時", "Downloaded at"),
    "kind": ("種類", "Kind"),
    "valid_from": ("適用開始日", "Applies from"),
    "card_amount": ("カード再交付の手数料（円）", "Card reissue fee (yen)"),
    "cert_amount": ("電子証明書の手数料（円）", "Certificate fee (yen)"),
    "note": ("備考", "Note"),
    "starts_at": ("開始日時", "Starts at"),
    "ends_at": ("終了日時", "Ends at"),
    "message": ("表示する文（日本語）", "Message (Japanese)"),
    "message_en": ("表示する文（英語）", "Message (English)"),
    "created_by": ("作成した職員（または cli:ユーザー）", "Created by (staff, or cli:user)"),
    "title": ("見出し（日本語）", "Title (Japanese)"),
    "body": ("本文", "Body"),
    "title_en": ("見出し（英語）", "Title (English)"),
    "body_en": ("本文（英語）", "Body (English)"),
    "audience": ("対象（staff: 職員、public: 住民）", "Audience (staff or public)"),
    "importance": ("重要度", "Importance"),
    "day": ("日付", "Day"),
    "site_kind": ("実施場所の種類（学校・企業など）", "Kind of site (school, company ...)"),
    "site_name": ("実施場所の名称", "Name of the site"),
    "address": ("住所", "Address"),
    "staff": ("担当職員（氏名）", "Staff present (names)"),
    "code": ("コード", "Code"),
    "needs_postcard": ("交付通知書（はがき）が必要", "Needs the notice postcard"),
    "what_to_bring": ("持ち物（日本語）", "What to bring (Japanese)"),
    "name_en": ("名称（英語）", "Name (English)"),
    "description_en": ("説明（英語）", "Description (English)"),
    "what_to_bring_en": ("持ち物（英語）", "What to bring (English)"),
    "fiscal_year": ("年度（4 月始まり）", "Fiscal year (from April)"),
    "last": ("最後に発行した番号", "Last number issued"),
    "shared": ("他の管理者と共有", "Shared with other managers"),
    "status": ("状態", "Status"),
    "expected_count": ("読み取る予定の件数", "Number of codes expected"),
    "registered_at": ("登録日時", "Registered at"),
    "capacity": ("収容できる枚数", "Capacity (cards)"),
    "sort_key": ("並び順", "Sort order"),
    "key": ("制限のキー（ハッシュ）", "Throttle key (a hash)"),
    "count": ("回数", "Count"),
    "window_started_at": ("数え始めた日時", "Window started at"),
    "access_note": ("アクセス（道案内）", "How to get there"),
    "uuid": ("UUID", "UUID"),
    "key_hash": ("キーのハッシュ", "Key hash"),
    "lookup_hash": ("検索用ハッシュ", "Lookup hash"),
    "key_prefix": ("キーの先頭", "Key prefix"),
    "scopes": ("範囲", "Scopes"),
    "expires_on": ("有効期限", "Expires on"),
    "revoked_on": ("失効日時", "Revoked on"),
    "last_used_on": ("最終使用日時", "Last used on"),
    "group_id": ("グループ", "Group"),
    "role_id": ("ロール", "Role"),
    "permission_id": ("権限", "Permission"),
    "view_menu_id": ("画面・メニュー", "View or menu"),
    "permission_view_id": ("権限と画面の組", "Permission on a view"),
    "application_id": ("申請書ID（23 桁の数字。文字列として先頭の 0 を保持）", "Application ID (23 digits; text, leading zeros kept)"),
    "shipment_number": ("発送番号", "Shipment number"),
    "manufacture_number": ("製造番号", "Card manufacture number"),
    "name_kana": ("フリガナ", "Name in katakana"),
    "postal_code": ("郵便番号", "Postal code"),
    "birth_date": ("生年月日", "Date of birth"),
    "has_sign_cert": ("署名用電子証明書あり", "Has the signature certificate"),
    "has_auth_cert": ("利用者証明用電子証明書あり", "Has the user authentication certificate"),
    "held_from": ("保留前の状態", "State before it was put on hold"),
    "storage_place_id": ("保管場所", "Storage place"),
    "notice_number": ("交付通知書番号", "Notice (postcard) number"),
    "card_expires_on": ("カードの有効期限", "Card expiry date"),
    "received_at": ("市区町村に到着した日時", "Received by the city"),
    "setup_at": ("初期設定した日時", "Set up at"),
    "notice_sent_at": ("交付通知書を発送した日時", "Notice sent at"),
    "renotified_at": ("再通知した日時", "Notified again at"),
    "returned_at": ("通知書が返戻された日時", "Notice returned at"),
    "mailed_at": ("本人限定受取郵便で送付した日時", "Mailed at"),
    "handed_over_at": ("交付した日時", "Handed over at"),
    "discarded_at": ("廃棄した日時", "Discarded at"),
    "handed_over_by": ("交付した職員", "Handed over by"),
    "identity_check": ("本人確認の内容（JSON 文字列）", "Identity check (JSON text)"),
    "discard_hold": ("廃棄保留", "Discard on hold"),
    "discard_hold_reason": ("廃棄保留の理由", "Why the discard is on hold"),
    "discard_reason": ("廃棄の理由", "Why it was discarded"),
    "notes": ("備考", "Notes"),
    "venue_id": ("会場", "Venue"),
    "clerk": ("担当職員のユーザーID", "Clerk (user ID)"),
    "counted_cash": ("数えた現金（円）", "Cash counted (yen)"),
    "expected_cash": ("帳簿上の現金（円）", "Cash expected (yen)"),
    "difference": ("差額（円）", "Difference (yen)"),
    "explanation": ("差額の説明", "Explanation of the difference"),
    "closed_at": ("締めた日時", "Closed at"),
    "closed_by": ("締めた職員", "Closed by"),
    "purpose_id": ("用件", "Purpose"),
    "opens_days_ahead": ("何日先まで予約を受け付けるか", "Bookable this many days ahead"),
    "closes_minutes_before": ("開始の何分前に受付を締め切るか", "Booking closes this many minutes before"),
    "last_start": ("最終の開始時刻", "Last start time"),
    "max_party": ("1 予約の最大人数", "Most persons per booking"),
    "card_id": ("カード", "Card"),
    "from_state": ("変更前の状態", "State before"),
    "to_state": ("変更後の状態", "State after"),
    "at": ("日時", "When"),
    "offer_id": ("会場と目的の組（venue_purpose）", "Venue and purpose (venue_purpose)"),
    "closed": ("休止", "Closed"),
    "starts": ("開始時刻", "Start time"),
    "ends": ("終了時刻", "End time"),
    "slot_minutes": ("枠の長さ（分）", "Slot length (minutes)"),
    "seats": ("席数（人数）", "Seats (persons)"),
    "batch_id": ("一括登録", "Batch"),
    "seq": ("読取順", "Order read"),
    "payload": ("QR の内容", "QR payload"),
    "reason": ("理由", "Reason"),
    "fields": ("読み取った項目（JSON 文字列）", "Fields read (JSON text)"),
    "source": ("読取元のファイル・ページ", "Source file and page"),
    "taken": ("予約済みの席数", "Seats taken"),
    "weekday": ("曜日（0 = 月曜 … 6 = 日曜）", "Weekday (0 Monday … 6 Sunday)"),
    "slot_id": ("時間枠", "Slot"),
    "expires_at": ("失効日時", "Expires at"),
    "number": ("予約番号", "Booking number"),
    "checked_in_at": ("受付（来庁確認）した日時", "Checked in at"),
    "checked_in_by": ("受付した職員", "Checked in by"),
    "completed_at": ("完了日時", "Completed at"),
    "channel": ("経路（web: 予約サイト、staff: 職員）", "Channel (web site or staff)"),
    "phone": ("電話番号", "Phone number"),
    "cancelled_at": ("取消日時", "Cancelled at"),
    "cancel_reason": ("取消の理由", "Why cancelled"),
    "idempotency_key": ("二重送信防止のキー", "Idempotency key"),
    "locale": ("メールの言語（ja, en）", "Language of mails (ja, en)"),
    "reminded_at": ("前日のお知らせメールを送った日時", "Reminder sent at"),
    "reservation_id": ("予約", "Booking"),
    "by_staff": ("職員による操作", "Done by staff"),
    "actor": ("操作した人", "Who"),
    "method": ("方法", "Method"),
    "reissue_reason": ("再交付の理由", "Reason for reissue"),
    "old_card_expires_on": ("旧カードの有効期限", "Old card's expiry date"),
    "holder_not_at_fault": ("本人の責によらない", "Not the holder's fault"),
    "official_error": ("行政の誤り", "An official's error"),
    "wants_sign_cert": ("署名用電子証明書を希望", "Wants the signature certificate"),
    "wants_auth_cert": ("利用者証明用電子証明書を希望", "Wants the authentication certificate"),
    "photo": ("写真（持参・撮影）", "Photo (brought or taken)"),
    "taken_at": ("受付日時", "Taken at"),
    "outreach_session_id": ("出張申請", "Outreach session"),
    "sent_at": ("送付・送信日時", "Sent at"),
    "withdrawn_at": ("取下げ日時", "Withdrawn at"),
    "withdraw_reason": ("取下げの理由", "Why withdrawn"),
    "fee_state": ("手数料の状態", "Fee state"),
    "to_address": ("宛先メールアドレス", "Recipient address"),
    "attempts": ("送信を試みた回数", "Attempts"),
    "next_attempt_at": ("次に送信を試みる日時", "Next attempt at"),
    "last_error": ("最後の送信エラー", "Last error"),
    "intake_id": ("申請受付", "Application taken"),
    "entry_type": ("種類（charge: 請求、payment: 収納、refund: 還付 など）", "Entry type (charge, payment, refund ...)"),
    "amount": ("金額（円）", "Amount (yen)"),
    "standard_amount": ("料金表どおりの金額（円）", "Amount by the schedule (yen)"),
    "override_reason": ("料金表と異なる金額の理由", "Why the amount differs from the schedule"),
    "tendered": ("預かり金（円）", "Cash tendered (yen)"),
    "change_due": ("おつり（円）", "Change (yen)"),
    "receipt_seq": ("年度内の領収書連番", "Receipt sequence in the fiscal year"),
    "receipt_number": ("領収書番号", "Receipt number"),
    "refund_of_id": ("還付の元になった収納", "Payment this refund is of"),
    "business_day": ("業務日", "Business day"),
    "printed_count": ("領収書を印刷した回数", "Receipts printed"),
    "category": ("書類の種類（申請書・本人確認書類・代理人の書類・その他）", "Category (application form, identity, proxy, other)"),
    "filename": ("アップロード時のファイル名", "File name as uploaded"),
    "media_type": ("ファイルの種類（内容から判定）", "Media type (by content)"),
    "size": ("平文のバイト数", "Plaintext size in bytes"),
    "pages": ("ページ数", "Pages"),
    "sha256": ("平文の SHA-256（16 進）", "SHA-256 of the plaintext (hex)"),
    "key_id": ("暗号化した鍵の ID（鍵そのものは含まない）", "ID of the key it is encrypted with (never the key)"),
    "uploaded_at": ("アップロード日時", "Uploaded at"),
    "uploaded_by": ("アップロードした職員", "Uploaded by"),
    "document_id": ("添付書類（intake_document.id）", "Document (intake_document.id)"),
    "nonce": ("AES-256-GCM のナンス（12 バイト、16 進）", "AES-256-GCM nonce (12 bytes, hex)"),
    "ciphertext": ("暗号文ファイルのアーカイブ内パス（documents/<id>.<拡張子>.enc。--decrypt では平文ファイル documents/<id>_<ファイル名>）", "Path in the archive of the ciphertext file (documents/<id>.<ext>.enc; with --decrypt the plaintext file documents/<id>_<file name>)"),
    "audit_log.created_at": ("記録した日時", "Recorded at"),
    "audit_log.username": ("操作した人（職員のユーザーID、cli:<OS ユーザー>、system、住民）", "Who (staff user ID, cli:<os user>, system, resident)"),
    "card.state": ("カードの状態（received, setup, notice_sent, reserved, renotified, returned, mailed, on_hold, handed_over, discarded）", "Card state (received, setup, notice_sent, reserved, renotified, returned, mailed, on_hold, handed_over, discarded)"),
    "card.name": ("氏名", "Name"),
    "reservation.name": ("予約者の氏名", "Name of the person booking"),
    "intake.name": ("申請者の氏名", "Applicant's name"),
    "intake.method": ("申請方法（counter: 窓口、outreach 等）", "How it was taken (counter, outreach ...)"),
    "intake.kind": ("申請の種類（new: 新規、reissue: 再交付 等）", "Kind (new, reissue ...)"),
    "ab_user.active": ("利用できる（false: 無効化）", "May sign in (false: disabled)"),
    "hold.token": ("仮押さえした人のブラウザの識別子", "Token of the browser holding the seats"),
    "scan_item.status": ("読取結果の分類", "Classification of the scan"),
    "booking_event.actor": ("操作した人", "Who"),
    "fee_entry.method": ("収納方法（cash 等）", "Payment method (cash ...)"),
    "saved_query.owner": ("保存した職員のユーザーID", "User ID of the owner"),
    "site_setting.key": ("設定の名前（export_policy、discard_candidates: 廃棄候補の最終更新 等）",
                         "Name of the setting (export_policy; discard_candidates: the last "
                         "refresh of the discard candidates ...)"),
    "site_setting.value": ("設定の値（JSON、例: {\"encryption_required\": true}）",
                           "Value of the setting (JSON, e.g. {\"encryption_required\": true})"),
    "site_setting.version": ("版（変更ごとに 1 増える。同時変更の検出用）",
                             "Version (+1 at each change; detects concurrent changes)"),
    "site_setting.updated_by": ("最後に変更した人", "Who changed it last"),
    "card_event.username": ("操作した人", "Who"),
    "discard_candidate.reason": ("廃棄候補の理由（expired: 有効期限切れ、returned: 返戻後の期限経過、renotified: 再通知後の期限経過、notice_sent: 交付通知書発送後の期限経過）",
                                 "Why a candidate (expired, returned, renotified, notice_sent: the deadline after that event passed)"),
    "discard_candidate.reason_on": ("理由の日付（有効期限、返戻日、再通知日、発送日）",
                                    "Day of the reason (expiry, return, reminder or notice)"),
    "discard_candidate.found_at": ("更新で最初に候補になった日時", "When a refresh first found it"),
    "stored_file.kind": ("種類（extraction: 抽出の出力、protected_export: 暗号化 ZIP、ledger_import: 既存データ取込のファイル）",
                         "Kind (extraction: an extraction export; protected_export: an encrypted ZIP; ledger_import: a file being imported)"),
    "stored_file.token": ("ファイルを指す推測できない文字列（抽出の出力では export_job.token と同じ）",
                          "Unguessable key of the file (for an extraction export, its export_job.token)"),
    "stored_file.owner": ("ファイルを受け取れる職員（ユーザー名）", "Staff member the file is for (username)"),
    "stored_file.filename": ("ダウンロード時のファイル名", "File name of the download"),
    "stored_file.size": ("大きさ（バイト）", "Size (bytes)"),
    "stored_file.chunks": ("中身の分割数（stored_file_chunk の行数）", "Number of pieces (rows of stored_file_chunk)"),
    "stored_file.sha256": ("中身の SHA-256（16 進）", "SHA-256 of the content (hex)"),
    "stored_file.created_at": ("作成日時", "Made at"),
    "stored_file.claimed_at": ("1 回限りのダウンロードで取り出された日時（取り出し後は削除）",
                               "When the one download took it (removed afterwards)"),
    "stored_file_chunk.file_id": ("ファイル（stored_file.id、ファイルと一緒に削除）",
                                  "The file (stored_file.id; removed with it)"),
    "stored_file_chunk.seq": ("中身の順番（0 から）", "Order of the piece (from 0)"),
    "stored_file_chunk.data": ("中身（約 1 MiB）", "Content (about 1 MiB)"),
    "export_job.file_name": ("出来上がったファイル（共有ファイル置き場 stored_file の token）",
                             "The finished file (token of its stored_file)"),
    "ledger_import_job.owner": ("ファイルを送った職員（ユーザー名）", "Staff member who sent the file (username)"),
    "ledger_import_job.state": ("状態（checking: 確認中、checked: 確認済み、importing: 取込中、done: 完了、failed: 失敗）",
                                "State (checking, checked, importing, done, failed)"),
    "ledger_import_job.status": ("確認・取込の結果（JSON: ファイル名、件数、問題の一覧の先頭、プレビュー、選んだ設定、対応表）",
                                 "What the check or import found (JSON: file name, counts, first problems, preview, chosen options, mapping)"),
    "ledger_import_job.heartbeat_at": ("最後に進み具合を書いた日時（止まった処理の検出用）",
                                       "Last progress written (tells a stopped job)"),
    "export_job.attempts": ("開始した回数（止まったジョブはワーカーが 1 回だけ引き継ぐ）",
                            "Times the job was started (a worker takes over a stopped job once)"),
    "job_run.job": ("処理の名前（outbox、close_day、reminders、slots、discard、backup、housekeeping）",
                    "Job name (outbox, close_day, reminders, slots, discard, backup, housekeeping)"),
    "job_run.period": ("期間（日次: YYYY-MM-DD、毎時: YYYY-MM-DDTHH、常時: continuous）",
                       "Period (daily: YYYY-MM-DD, hourly: YYYY-MM-DDTHH, always: continuous)"),
    "job_run.worker": ("実行したワーカー（ホスト名:プロセス番号）", "Worker that ran it (host:pid)"),
    "job_run.started_at": ("開始日時", "Started at"),
    "job_run.lease_until": ("実行中の期限（過ぎると別のワーカーが引き継ぐ）",
                            "Lease end while running (after it another worker takes over)"),
    "job_run.succeeded_at": ("最後に正常終了した日時", "Last good end"),
    "job_run.result": ("結果（1 行の説明）", "Result (one line)"),
}


def _kind(column) -> tuple[str, str]:
    from app.services.migration_export import BLOB_FILE_COLUMN, _python_type

    kind = _python_type(column)
    impl = getattr(column.type, "impl_instance", column.type)
    length = getattr(impl, "length", None)
    if (column.table.name, column.name) == BLOB_FILE_COLUMN:
        return "ファイルのパス", "file path"
    if kind is bool:
        return "真偽（true/false）", "boolean (true/false)"
    if kind is int:
        return "整数", "integer"
    if kind is str:
        return (f"文字列({length})", f"text({length})") if length else ("文字列", "text")
    if kind.__name__ == "datetime":
        if getattr(impl, "timezone", False):
            return "日時（+09:00 付き）", "timestamp (+09:00)"
        return "日時（オフセットなし）", "timestamp (no offset)"
    if kind.__name__ == "date":
        return "日付", "date"
    if kind.__name__ == "time":
        return "時刻", "time"
    if kind is bytes:
        return "バイナリ（16 進）", "binary (hex)"
    return kind.__name__, kind.__name__


def _key(column) -> str:
    parts = []
    if column.primary_key:
        parts.append("PK")
    for fk in column.foreign_keys:
        parts.append(f"→ `{fk.column.table.name}.{fk.column.name}`")
    if column.unique:
        parts.append("UNIQUE")
    return " ".join(parts)


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def reference() -> tuple[str, list[str]]:
    from sqlalchemy import CheckConstraint

    from flask_appbuilder import Model

    from app.services.migration_export import NOT_EXPORTED, tables

    missing = []
    out = [MARKER, "", "## 7. ファイルと列の一覧 / Files and columns", "",
           "テーブルは依存順（参照される側が先）で、manifest.json の `tables` と同じ順です。 "
           "Tables in dependency order (a table after those it refers to), as in "
           "manifest.json `tables`.", ""]
    for table in tables():
        out += _table_section(table, f"### `tables/{table.name}.csv`", missing)
    out += ["## 8. エクスポートしないテーブル / Tables not exported", "",
            "共有ファイル置き場（ダウンロードを待つ抽出・暗号化 ZIP、取込中のファイル）と既存データ"
            "取込の処理は一時的なもので、保管期間が過ぎると消えるため、移行エクスポートに含めません。 "
            "The shared file store (exports waiting for their download, files being "
            "imported) and the ledger import's jobs are temporary, removed after their "
            "keeping time: they are not part of the migration export.", ""]
    for table in Model.metadata.sorted_tables:
        if table.name in NOT_EXPORTED:
            out += _table_section(table, f"### `{table.name}`（エクスポートしない / not exported）",
                                  missing)
    return "\n".join(out), missing


def _table_section(table, heading: str, missing: list) -> list:
    from sqlalchemy import CheckConstraint

    out = []
    ja, en = TABLES.get(table.name, ("", ""))
    if not ja:
        missing.append(table.name)
    out += [heading, "", f"{ja} / {en}", "",
            "| 列 Column | 型 Type | NULL | キー Key | 説明 | Description |",
            "|---|---|---|---|---|---|"]
    for column in table.columns:
        meaning = COLUMNS.get(f"{table.name}.{column.name}") or COLUMNS.get(column.name)
        if meaning is None:
            missing.append(f"{table.name}.{column.name}")
            meaning = ("", "")
        kind_ja, kind_en = _kind(column)
        out.append(f"| `{column.name}` | {kind_ja} {kind_en} | "
                   f"{'可 yes' if column.nullable else '不可 no'} | {_key(column)} | "
                   f"{_cell(meaning[0])} | {_cell(meaning[1])} |")
    checks = [constraint for constraint in table.constraints
              if isinstance(constraint, CheckConstraint)]
    if checks:
        out += ["", "値の制約 / CHECK rules:", ""]
        out += sorted(f"- `{_cell(str(check.sqltext))}`" for check in checks)
    out.append("")
    return out


def main() -> int:
    path = os.path.join(ROOT, "docs", "data-export.md")
    with open(path, encoding="utf-8") as handle:
        head = handle.read().split(MARKER)[0].rstrip() + "\n\n"
    body, missing = reference()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(head + body)
    for name in missing:
        print(f"no description: {name}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
