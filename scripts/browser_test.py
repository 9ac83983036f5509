#!/usr/bin/env python3
"""The dashboard in a real browser (Chromium through Playwright), against a running crm-local.

    browser_test.py BASE_URL ADMIN_KEY [SCREENSHOT_DIR]

scripts/browser_tests.sh starts crm-local over a temporary store and runs this. It signs in,
compares the overview with the API, creates, tests, edits, disables and rotates a webhook
through the page (its receiver is an http.server on 127.0.0.1 run here), retries a FAILED
delivery from its page, checks a READ_ONLY key sees no write control, a wrong key its 401
message, sign-out, and the page at 360 px. It fails on any console error, uncaught exception
or Content-Security-Policy violation, on a request to another origin and on a key in a URL.
Prints the page weight and the time to first render; exits 1 on the first failed check.
"""
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

BASE = sys.argv[1].rstrip("/")
ADMIN = sys.argv[2]
SHOTS = sys.argv[3] if len(sys.argv) > 3 else "target/dashboard-screenshots"
KEY_STORAGE = "crm.apiKey"
CHROMIUM = "/usr/bin/chromium"
expect.set_options(timeout=10_000)


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


# ---- the API, as the test sees it ------------------------------------------------------------

def api(method, path, body=None, key=ADMIN):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, (json.loads(text) if text else None)


def api_ok(method, path, body=None, key=ADMIN):
    status, answer = api(method, path, body, key)
    check(200 <= status < 300, f"{method} {path} answered {status}: {answer}")
    return answer


def poll(what, probe, timeout=30.0):
    """Calls probe() until it returns something truthy; fails naming `what` after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.2)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


# ---- the webhook receiver ------------------------------------------------------------------

class Receiver:
    """Records every request; answers `status` (switchable) with a short body."""

    def __init__(self):
        self.status = 200
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = None
                with receiver.lock:
                    status = receiver.status
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "payload": payload, "answered": status})
                reply = f"receiver answered {status}".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, predicate):
        with self.lock:
            return [r for r in self.requests if predicate(r)]


# ---- the page ------------------------------------------------------------------------------

problems = []     # console errors, page errors, CSP violations, failed API calls
expected_failures = {("GET", "/api/me", 401)}  # (method, path, status) the test provokes
request_urls = []


pages = []        # the last one is screenshot on a failure


def watch(page):
    pages.append(page)
    page.expose_function("reportCspViolation", lambda what: problems.append(f"CSP violation: {what}"))
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "window.reportCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`))")
    # A failed API call is reported by the response below, with its address.
    page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
            and problems.append(f"console error: {m.text}"))
    page.on("response", lambda r: r.status >= 400
            and (r.request.method, r.url.removeprefix(BASE), r.status) not in expected_failures
            and problems.append(f"{r.request.method} {r.url} answered {r.status}"))
    page.on("pageerror", lambda e: problems.append(f"uncaught exception: {e}"))
    page.on("dialog", lambda d: d.accept())  # confirm() before rotate / delete
    page.on("request", lambda r: request_urls.append(r.url))


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def wait_rendered(page):
    """Until the view shows the page of the current hash."""
    page.wait_for_function("() => { const v = document.getElementById('view');"
                           " return v.dataset.route === location.hash && !v.hasAttribute('aria-busy'); }")


def goto(page, hash_):
    page.evaluate("h => { location.hash = h; }", hash_)
    wait_rendered(page)


def stored_key(page):
    return page.evaluate(f"() => sessionStorage.getItem('{KEY_STORAGE}')")


def sign_in(page, key):
    page.fill("#api-key", key)
    page.press("#api-key", "Enter")  # the keyboard submits the form


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#sign-in")).to_be_visible()


def text_of(page, selector):
    return page.locator(selector).inner_text().strip()


def visible_buttons(page):
    return page.evaluate("""() => [...document.querySelectorAll('button, input[type=submit], select, summary')]
        .filter(b => b.offsetParent !== null && !b.disabled)
        .map(b => b.tagName === 'SELECT' ? (b.classList.contains('status-select') ? 'sync status select' : 'SELECT')
                                          : (b.textContent || b.value || b.tagName).trim())""")


# ---- the checks ----------------------------------------------------------------------------

def seed_clients():
    statuses = ["SYNCED", "SYNCED", "SYNCED", "PENDING", "PENDING", "FAILED", "NEEDS_UPDATE"]
    for i, status in enumerate(statuses):
        client = api_ok("POST", "/api/clients", {"name": f"Browser client {i}",
                                                  "email": f"c{i}@example.com", "company": "Test & <Co>"})
        if status != "NEEDS_UPDATE":
            api_ok("POST", "/api/crm/update-sync-status", {"clientId": client["id"], "status": status})


def compare_overview(page):
    goto(page, "#overview")
    sync = api_ok("GET", "/api/crm/sync-status")
    stats = api_ok("GET", "/api/webhooks/stats")
    for key in ["totalClients", "syncedClients", "pendingClients", "failedClients", "needsUpdateClients"]:
        shown = text_of(page, f"#sync-stats [data-stat={key}]")
        check(shown == str(sync[key]), f"overview shows {key} = {shown!r}, the API says {sync[key]}")
    for key in ["total", "pending", "success", "failed", "retrying", "cancelled"]:
        shown = text_of(page, f"#delivery-stats [data-stat={key}]")
        check(shown == str(stats[key]), f"overview shows deliveries {key} = {shown!r}, the API says {stats[key]}")
    shown = page.locator("[data-stat=lastSyncTime] time").get_attribute("datetime")
    check(shown == sync["lastSyncTime"], f"overview shows lastSyncTime {shown!r}, the API says {sync['lastSyncTime']!r}")
    rate = text_of(page, "[data-stat=successRate]")
    if stats["successRate"] is None:
        check(rate == "—", f"success rate shown {rate!r} with no delivery")
    else:
        check(abs(float(rate.rstrip(" %")) - stats["successRate"] * 100) < 0.051,
              f"overview shows success rate {rate!r}, the API says {stats['successRate']}")
    bars = page.locator("svg.chart rect").count()
    check(bars == 4, f"the sync chart has {bars} bars, not 4")
    return sync, stats


def run(p):
    receiver = Receiver()
    timings = {}
    browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch(page)

    # ---- 1. sign in, and the first render
    seed_clients()
    page.goto(BASE + "/")
    page.wait_for_function("() => !document.getElementById('sign-in').hidden")
    timings["sign-in form visible"] = page.evaluate("() => performance.now()")
    fcp = page.evaluate("() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
    timings["first contentful paint"] = fcp
    check(stored_key(page) is None, "a key is in sessionStorage before signing in")
    sign_in(page, ADMIN)
    expect(page.locator("#who-text")).to_contain_text("ADMIN")
    expect(page.locator("#nav")).to_be_visible()
    check(stored_key(page) == ADMIN, "the key is not in sessionStorage after signing in")
    print("ok   1. sign in with the admin key (keyboard: Enter submits)")

    # ---- 2. the overview equals the API
    sync, _ = compare_overview(page)
    check(sync["totalClients"] >= 7 and sync["syncedClients"] >= 3, f"the seeded clients are missing: {sync}")
    shot(page, "overview.png")
    print(f"ok   2. overview equals the API ({sync['totalClients']} clients: "
          f"{sync['syncedClients']} synced, {sync['pendingClients']} pending, {sync['failedClients']} failed, "
          f"{sync['needsUpdateClients']} needs update)")

    # ---- clients: filter and status change
    goto(page, "#clients")
    page.get_by_label("Sync status", exact=True).select_option("PENDING")
    page.wait_for_function("() => location.hash === '#clients?status=PENDING'")
    wait_rendered(page)
    listed = api_ok("GET", "/api/clients?syncStatus=PENDING&limit=100")["items"]
    rows = page.locator("table.clients-table tbody tr[data-id]")
    check(rows.count() == len(listed), f"the PENDING filter shows {rows.count()} clients, the API {len(listed)}")
    target = listed[0]
    row = page.locator(f"tr[data-id='{target['id']}']")
    row.get_by_label(f"New status for {target['name']}").select_option("FAILED")
    row.get_by_role("button", name="Set status").click()
    expect(row.locator(".badge")).to_have_text("FAILED")
    now = api_ok("GET", f"/api/clients/{target['id']}")
    check(now["syncStatus"] == "FAILED", f"the page's status change did not reach the API: {now['syncStatus']}")
    check("Test & <Co>" in row.inner_text(), "client data is not shown as text (escaping)")
    shot(page, "clients.png")
    print("ok      clients: the status filter lists what the API does; a status change reaches the API")

    # ---- 3. create a webhook through the page, test it
    goto(page, "#webhooks")
    page.get_by_role("button", name="New webhook").click()
    form = page.locator("form.webhook-form")
    form.get_by_label("URL").fill(receiver.url + "/page-hook")
    form.get_by_label("Description").fill("made by the browser test")
    expected_failures.add(("POST", "/api/webhooks", 400))
    form.get_by_role("button", name="Create webhook").click()  # no event picked: the API refuses it
    status, refusal = api("POST", "/api/webhooks", {"url": receiver.url + "/page-hook", "events": []})
    check(status == 400, f"a webhook with no event answered {status}")
    expect(form.locator(".error")).to_contain_text(refusal["error"])
    expected_failures.discard(("POST", "/api/webhooks", 400))
    form.locator("input[value='lead.updated']").check()
    form.get_by_role("button", name="Create webhook").click()
    secret_box = page.locator(".secret-panel input.secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    check(secret.startswith("whsec_"), f"the new webhook's secret is not shown: {secret!r}")
    expect(page.locator(".secret-panel").get_by_role("button", name="Copy")).to_be_visible()
    hooks = [w for w in api_ok("GET", "/api/webhooks?limit=100")["items"] if w["url"] == receiver.url + "/page-hook"]
    check(len(hooks) == 1, f"the webhook made by the page is not in the API's list once: {hooks}")
    hook = hooks[0]
    check(hook["events"] == ["lead.updated"], f"the webhook's events are {hook['events']}")
    card = page.locator(f"article.webhook[data-id='{hook['id']}']")
    receiver.status = 202
    card.get_by_role("button", name="Send test").click()
    expect(card.locator(".test-result")).to_contain_text("HTTP 202")
    expect(card.locator(".test-result [data-field=durationMs]")).to_contain_text("ms")
    tests = receiver.find(lambda r: r["path"] == "/page-hook" and (r["payload"] or {}).get("event") == "webhook.test")
    check(len(tests) == 1, f"the receiver got {len(tests)} test requests, not 1")
    shot(page, "webhooks.png")
    print("ok   3. a webhook created on the page; its test reached the receiver and its answer (202) is shown")

    # edit, disable / enable, rotate
    card.get_by_role("button", name="Edit").click()
    card.get_by_label("Description").fill("edited by the browser test")
    card.get_by_role("button", name="Save webhook").click()
    poll("the description edit", lambda: api_ok("GET", f"/api/webhooks/{hook['id']}")["description"]
         == "edited by the browser test", 10)
    card = page.locator(f"article.webhook[data-id='{hook['id']}']")
    card.get_by_role("button", name="Disable").click()
    expect(card.get_by_role("button", name="Enable")).to_be_visible()
    check(api_ok("GET", f"/api/webhooks/{hook['id']}")["active"] is False, "Disable did not deactivate the webhook")
    card.get_by_role("button", name="Enable").click()
    expect(card.get_by_role("button", name="Disable")).to_be_visible()
    check(api_ok("GET", f"/api/webhooks/{hook['id']}")["active"] is True, "Enable did not activate the webhook")
    card.get_by_role("button", name="Rotate secret").click()
    rotated = card.locator(".secret-panel input.secret")
    expect(rotated).to_be_visible()
    check(rotated.input_value().startswith("whsec_") and rotated.input_value() != secret,
          "rotating did not show a new secret")
    print("ok      edit, disable, enable and rotate-secret through the page reach the API")

    # ---- 4. a FAILED delivery retried from its page
    failing = api_ok("POST", "/api/webhooks", {"url": receiver.url + "/retry-hook", "events": ["lead.created"],
                                                "maxRetries": 0, "description": "answers 500 first"})
    receiver.status = 500
    ids = api_ok("POST", "/api/webhooks/notify", {"event": "lead.created",
                                                   "data": {"leadId": "L-browser", "name": "Grace <b>Hopper</b>"}})["deliveryIds"]
    ours = [i for i in ids if api_ok("GET", f"/api/webhooks/deliveries/{i}")["webhookId"] == failing["id"]]
    check(len(ours) == 1, f"notify made {len(ours)} deliveries to the failing webhook, not 1: {ids}")
    delivery_id = ours[0]
    poll("the delivery to be FAILED",
         lambda: api_ok("GET", f"/api/webhooks/deliveries/{delivery_id}")["status"] == "FAILED")
    check(len(receiver.find(lambda r: r["path"] == "/retry-hook")) == 1, "the receiver did not get the first attempt")
    receiver.status = 200
    goto(page, "#deliveries?status=FAILED")
    expect(page.locator(f"tr[data-id='{delivery_id}']")).to_be_visible()
    shot(page, "deliveries.png")
    goto(page, f"#deliveries?webhookId={failing['id']}&status=FAILED")
    expect(page.locator(f"tr[data-id='{delivery_id}']")).to_be_visible()
    page.locator(f"tr[data-id='{delivery_id}']").get_by_role("link", name="Details").click()
    page.wait_for_function("() => location.hash.startsWith('#delivery/')")
    wait_rendered(page)
    expect(page.locator("[data-field=status]")).to_have_text("FAILED")
    attempts = page.locator("table.attempts-table tbody tr")
    check(attempts.count() == 1, f"the delivery page shows {attempts.count()} attempts, not 1")
    expect(attempts.first).to_contain_text("500")
    expect(attempts.first).to_contain_text("receiver answered 500")
    shot(page, "delivery.png")
    page.get_by_role("button", name="Retry").click()
    poll("the retried request at the receiver",
         lambda: receiver.find(lambda r: r["path"] == "/retry-hook" and r["answered"] == 200))
    poll("the delivery to be SUCCESS",
         lambda: api_ok("GET", f"/api/webhooks/deliveries/{delivery_id}")["status"] == "SUCCESS")
    expect(page.locator("[data-field=status]")).to_have_text("SUCCESS", timeout=15_000)
    check(page.locator("table.attempts-table tbody tr").count() == 2, "the page does not show the second attempt")
    print("ok   4. a FAILED delivery retried from its page reached the receiver and became SUCCESS")

    # the overview again, now with deliveries and a failing webhook
    compare_overview(page)
    print("ok      overview equals the API with deliveries")

    # ---- 7. sign-out clears the session
    sign_out(page)
    check(page.evaluate("() => sessionStorage.length") == 0, "sessionStorage is not empty after sign-out")
    check(page.locator("#nav").is_hidden(), "the navigation is still shown after sign-out")
    check(page.locator("#view").is_hidden(), "data is still shown after sign-out")
    page.reload()
    expect(page.locator("#sign-in")).to_be_visible()
    print("ok   7. sign-out clears sessionStorage and returns to the sign-in form (also after a reload)")

    # ---- 5. a READ_ONLY key sees no write control (a FAILED delivery offers no retry)
    receiver.status = 500
    ids = api_ok("POST", "/api/webhooks/notify", {"event": "lead.created", "data": {"leadId": "L-3"}})["deliveryIds"]
    failed_id = [i for i in ids if api_ok("GET", f"/api/webhooks/deliveries/{i}")["webhookId"] == failing["id"]][0]
    poll("the second delivery to be FAILED",
         lambda: api_ok("GET", f"/api/webhooks/deliveries/{failed_id}")["status"] == "FAILED")
    viewer = api_ok("POST", "/api/keys", {"name": "viewer", "role": "READ_ONLY"})["key"]
    sign_in(page, viewer)
    expect(page.locator("#who-text")).to_contain_text("READ_ONLY")
    allowed = {"Sign out", "Load more", "Refresh", "Dismiss", "SELECT"}
    for where in ["#overview", "#clients", "#webhooks", "#deliveries?status=FAILED", f"#delivery/{failed_id}",
                  f"#deliveries?webhookId={failing['id']}"]:
        goto(page, where)
        controls = [b for b in visible_buttons(page) if b not in allowed]
        check(not controls, f"a READ_ONLY key sees write controls on {where}: {controls}")
        if where == "#webhooks":
            shot(page, "read-only.png")
    goto(page, "#clients")
    check(page.locator(".status-select, .set-status").count() == 0, "a READ_ONLY key can change a sync status")
    check(page.locator("details").count() == 0, "a READ_ONLY key is offered to add a client")
    print("ok   5. a READ_ONLY key sees no create/edit/test/rotate/retry/enable/delete/status control")
    sign_out(page)

    # ---- 6. a wrong key
    status, answer = api("GET", "/api/me", key="crm_not_a_key_of_anyone")
    check(status == 401, f"a wrong key answered {status}")
    sign_in(page, "crm_not_a_key_of_anyone")
    expect(page.locator("#sign-in-error")).to_have_text(answer["error"])
    check(stored_key(page) is None, "a wrong key was kept in sessionStorage")
    check(page.locator("#nav").is_hidden(), "a wrong key shows the navigation")
    shot(page, "sign-in-error.png")
    print(f"ok   6. a wrong key gets the API's message: {answer['error']!r}")

    # ---- 360 px wide: no horizontal scroll on any page
    narrow = browser.new_context(viewport={"width": 360, "height": 740})
    small = narrow.new_page()
    watch(small)
    small.goto(BASE + "/")
    sign_in(small, ADMIN)
    expect(small.locator("#who-text")).to_contain_text("ADMIN")
    widths = {}
    for where in ["#overview", "#clients", "#webhooks", "#deliveries", f"#delivery/{delivery_id}"]:
        goto(small, where)
        if where == "#webhooks":
            small.locator(f"article.webhook[data-id='{hook['id']}']").get_by_role("button", name="Edit").click()
        widths[where] = small.evaluate("() => document.documentElement.scrollWidth")
        if where == "#overview":
            shot(small, "narrow.png")
    wide = {k: v for k, v in widths.items() if v > 360}
    check(not wide, f"pages scroll horizontally at 360 px (scrollWidth): {wide}")
    # Focus is visible: a tabbed-to control has an outline.
    small.keyboard.press("Tab")
    outline = small.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    check(outline not in ("none", ""), f"the focused element has no visible outline ({outline})")
    narrow.close()
    print("ok   7b. at 360 px no page scrolls sideways; focus is visible")

    # ---- the page kept to itself
    check(not problems, "the browser reported problems:\n  " + "\n  ".join(problems))
    foreign = [u for u in request_urls if not u.startswith(BASE + "/")]
    check(not foreign, f"requests to another origin: {foreign}")
    leaked = [u for u in request_urls if ADMIN in u or viewer in u]
    check(not leaked, f"an API key in a URL: {leaked}")
    print("ok      no console error, no CSP violation, no request off this origin, no key in a URL")

    browser.close()
    return timings


def page_weight():
    sizes = {}
    for path in ["/", "/dashboard/app.js", "/dashboard/app.css"]:
        with urllib.request.urlopen(BASE + path, timeout=10) as response:
            sizes[path] = len(response.read())
            if path == "/":
                csp = response.headers.get("Content-Security-Policy") or ""
                check("script-src 'self'" in csp, f"the page is served without its policy: {csp!r}")
    return sizes


def main():
    started = time.monotonic()
    sizes = page_weight()
    with sync_playwright() as p:
        try:
            timings = run(p)
        except (CheckFailed, AssertionError, PlaywrightError) as failure:
            print(f"FAIL {failure}", file=sys.stderr)
            try:
                shot(pages[-1], "failure.png")
                print(f"the page at the failure: {SHOTS}/failure.png", file=sys.stderr)
            except Exception:  # noqa: BLE001 - the browser may be gone
                pass
            if problems:
                print("browser problems:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 1
    total = sum(sizes.values())
    print()
    print("| measure                         | value     |")
    print("|---------------------------------|-----------|")
    for path, size in sizes.items():
        print(f"| {'size of ' + path:<31} | {size / 1024:6.1f} KB |")
    print(f"| {'page weight (all three)':<31} | {total / 1024:6.1f} KB |")
    for name, ms in timings.items():
        value = f"{ms:6.0f} ms" if isinstance(ms, (int, float)) else "      n/a"
        print(f"| {name:<31} | {value} |")
    print(f"| {'whole browser run':<31} | {time.monotonic() - started:6.1f} s  |")
    print(f"screenshots in {SHOTS}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
