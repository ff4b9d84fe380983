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
