"""Page objects: what a clerk does on a screen, without assertions."""


class LoginPage:
    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url

    def open(self):
        self.page.goto(f"{self.base_url}/login/")
        return self

    def sign_in(self, username, password):
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("input[type=submit], button[type=submit]")
        self.page.wait_for_load_state("networkidle")


class NoticeForm:
    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url

    def open(self):
        self.page.goto(f"{self.base_url}/noticemodelview/add")
        return self

    def fill(self, title, body, audience, importance, starts_at, ends_at=""):
        self.page.fill("input[name=title]", title)
        self.page.fill("textarea[name=body]", body)
        self.page.select_option("select[name=audience]", audience, force=True)
        self.page.select_option("select[name=importance]", importance, force=True)
        for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
            self.page.fill(f"input[name={name}]", value)
            self.page.keyboard.press("Escape")  # close the date picker, keep what was typed

    def save(self):
        self.page.click("form#model_form button[type=submit], form button[type=submit]")
        self.page.wait_for_load_state("networkidle")


class CardLedger:
    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url

    def open(self, query=""):
        self.page.goto(f"{self.base_url}/cardmodelview/list/{query}")
        return self

    def select_all(self):
        self.page.check("#check_all")

    def run_action(self, name, confirm=True):
        self.page.click("button.dropdown-toggle:has-text('アクション')")
        self.page.click(f".{name}_menu_item")
        if confirm:
            self.page.click("#modal-confirm-ok")
        self.page.wait_for_load_state("networkidle")


class CardForm:
    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url

    def open(self):
        self.page.goto(f"{self.base_url}/cardmodelview/add")
        return self

    def fill(self, **values):
        for name, value in values.items():
            self.page.fill(f"[name={name}]", value)

    def save(self):
        self.page.click("form button[type=submit]")
        self.page.wait_for_load_state("networkidle")


class HandoverDesk:
    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url

    def open(self):
        self.page.goto(f"{self.base_url}/handover/")
        return self

    def find(self, text):
        self.page.fill("#q", text)
        self.page.keyboard.press("Enter")
        self.page.wait_for_load_state("networkidle")

    def check_identity_and_hand_over(self):
        self.page.check("input[name=identity][value=one_a]")
        self.page.check("input[name=pin_set]")
        self.page.click("[data-testid=handover-form] button[type=submit]")
        self.page.wait_for_load_state("networkidle")


class ResidentBooking:
    """The residents' booking pages, driven as a resident would: by labels and buttons."""

    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url

    def open(self):
        self.page.goto(self.base_url + "/reserve/")
        return self

    def start(self, code="kofu"):
        self.page.click(f"[data-testid=purpose-{code}]")

    def enter_person(self, index, notice_number, birth_date):
        self.page.fill(f"#notice_number-{index}", notice_number)
        self.page.fill(f"#birth_date-{index}", birth_date)

    def add_person(self):
        self.page.click("button[name=add_person]")

    def next(self):
        self.page.click("button.primary")

    def choose_venue(self, name):
        self.page.get_by_label(name).check()
        self.next()

    def choose_first_free_day(self):
        self.page.click("[data-testid=calendar] td.free a, [data-testid=calendar] td.few a")

    def choose_time(self, index=0):
        self.page.locator("[data-testid=times] button.time").nth(index).click()

    def contact(self, phone, email=""):
        self.page.fill("#phone", phone)
        if email:
            self.page.fill("#email", email)
            self.page.fill("#email_confirm", email)
        self.next()

    def book(self):
        self.page.click("button[data-once]")
        self.page.wait_for_url("**/reserve/done")
        return self.page.inner_text("[data-testid=reservation-number]").strip()

    def look_up(self, number, birth_date):
        self.page.goto(self.base_url + "/reserve/lookup")
        self.page.fill("#reservation_number", number)
        self.page.fill("#birth_date", birth_date)
        self.next()
