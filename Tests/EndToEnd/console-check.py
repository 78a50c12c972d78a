"""Browser checks of `tunnel audit serve`, one line per check, "N passed, N failed" last.

Usage: console-check.py TUNNEL AUDIT_DIR SCREENSHOT_DIR. Every console it starts is ended by PID;
every copy of the log lives in one temporary directory, removed at the end.
"""
import glob, json, os, re, shutil, socket, subprocess, sys, tempfile, urllib.parse
from playwright.sync_api import sync_playwright

TUNNEL, AUDIT, SHOTS = sys.argv[1:4]
WORK = tempfile.mkdtemp(prefix="tunnel-console-")
CONSOLES = []
RESULTS = {"passed": 0, "failed": 0}
HOSTILE = "<script>window.__pwned=1</script>\u001b[31mred"


def check(name, condition, detail=""):
    RESULTS["passed" if condition else "failed"] += 1
    print(("ok   - " if condition else "FAIL - ") + name + ("" if condition or not detail else "\n       " + str(detail)[:2000]), flush=True)


def records(directory):
    out = []
    for path in sorted(glob.glob(directory + "/audit-*.jsonl")):
        out += [json.loads(line) for line in open(path) if line.strip()]
    return out


def serve(*arguments):
    """Starts a console and returns (its URL with the secret, its base address)."""
    env = dict(os.environ, HOME=os.path.join(WORK, "home"))
    process = subprocess.Popen([TUNNEL, "audit", "serve", *arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    CONSOLES.append(process)
    for _ in range(20):
        line = process.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if match:
            url = match.group(1)
            return url, url.split("/sessions")[0]
        if not line and process.poll() is not None:
            break
    raise SystemExit("the console did not print its URL")


def copy_log(name, change=None):
    target = os.path.join(WORK, name)
    shutil.copytree(AUDIT, target)
    if change:
        change(target)
    return target


def table(page, selector):
    return page.eval_on_selector_all(selector + " tbody tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText))")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(path, text, seconds=20):
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return True
        time.sleep(0.1)
    return False


def live(browser):
    """--gateway: an auditor's own login with audit: true reads the log over the tunnel."""
    data, env = os.path.join(WORK, "gateway"), dict(os.environ, HOME=os.path.join(WORK, "home"))
    os.makedirs(env["HOME"])
    policy = os.path.join(WORK, "policy.yaml")
    open(policy, "w").write("roles:\n  admin:\n    admin: true\n  auditor:\n    audit: true\n")
    port = free_port()
    log = os.path.join(WORK, "gateway.log")
    gateway = subprocess.Popen([TUNNEL, "gateway", "--listen", "127.0.0.1:%d" % port, "--data-dir", data, "--policy", policy],
                               stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    CONSOLES.append(gateway)
    if not wait_for(log, "admin socket open"):
        return check("a gateway for the live console starts", False, open(log).read())
    configs = {}
    for user, role in (("ada", "auditor"), ("eve", "admin")):
        bundle = os.path.join(WORK, user + ".yaml")
        subprocess.run([TUNNEL, "user", "add", user, "--role", role, "--gateway", "127.0.0.1:%d" % port, "--server-name", "localhost",
                        "--out", bundle, "--admin-socket", data + "/admin.sock"], check=True, env=env, capture_output=True)
        subprocess.run([TUNNEL, "login", bundle, "--config-dir", os.path.join(WORK, user)], check=True, env=env, capture_output=True)
        configs[user] = os.path.join(WORK, user, "operator.yaml")
    refused = subprocess.run([TUNNEL, "audit", "serve", "--gateway", "--config", configs["eve"]], capture_output=True, text=True, env=env, timeout=60)
    check("--gateway refuses an operator without audit: true, saying why",
          refused.returncode != 0 and "audit: true" in refused.stderr, refused.stdout + refused.stderr)
    url, base = serve("--gateway", "--config", configs["ada"])
    page = browser.new_page()
    page.goto(url)
    check("--gateway serves the gateway's log, verified here", "Verified." in page.inner_text("#verification"), page.inner_text("#verification"))
    page.screenshot(path=SHOTS + "/live.png", full_page=True)
    page.close()
    reads = [r for r in records(data + "/audit") if r["type"] == "audit_read" and r.get("operator") == "ada"]
    check("the gateway records the auditor's read over the tunnel", reads and reads[0]["outcome"] == "ok", reads)
    denied = [r for r in records(data + "/audit") if r["type"] == "audit_read" and r.get("operator") == "eve"]
    check("and the refused one", denied and denied[0]["outcome"] == "denied", denied)


def main(browser):
    truth = records(AUDIT)
    streams = {r["stream"]: r for r in truth if r["type"] in ("stream_open", "stream_deny")}
    closes = {r["stream"]: r for r in truth if r["type"] == "stream_close"}
    url, base = serve(copy_log("plain"))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    violations = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    access(browser, context, page, url, base)
    expected = sessions(page, base, streams)
    bundle = filters_and_exports(context, page, base, streams, closes)
    shell = timeline_and_player(page, base, streams, closes)
    check("no page broke the Content-Security-Policy", not violations, violations[:3])
    no_javascript(browser, context, base, expected)
    tampered(page, shell)
    hostile_and_bundle(page, streams, bundle)
    context.close()


def access(browser, context, page, url, base):
    """Without the secret, nothing; with it, once, then a cookie; loopback only."""
    check("a request without the URL's secret is refused", page.goto(base + "/sessions").status == 403)
    check("a wrong secret is refused", page.goto(base + "/sessions?token=00").status == 403)
    host = urllib.parse.urlparse(url).hostname
    check("the console listens on loopback by default", host == "127.0.0.1", url)
    others = [a for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split() if ":" not in a and not a.startswith("127.")]
    port = urllib.parse.urlparse(url).port
    reachable = []
    for address in others:
        try:
            socket.create_connection((address, port), timeout=2).close()
            reachable.append(address)
        except OSError:
            pass
    check("the console cannot be reached on this host's other addresses", not reachable, reachable)
    response = page.goto(url)
    check("the secret URL opens the sessions page and drops the secret from the address",
          response.status == 200 and "token" not in page.url and page.url.endswith("/sessions"), page.url)
    cookie = [c for c in context.cookies() if c["name"] == "tunnel_console"]
    check("the session cookie is HttpOnly and SameSite=Strict", cookie and cookie[0]["httpOnly"] and cookie[0]["sameSite"] == "Strict", cookie)
    other = browser.new_context()
    check("the secret works only once", other.new_page().goto(url).status == 403)
    other.close()
    rebinding = context.request.get(base + "/sessions", headers={"Host": "attacker.example:%d" % port})
    check("a request naming another host is refused (DNS rebinding)", rebinding.status == 403)


def sessions(page, base, streams):
    """Exactly the scenario's streams; a service filter that the URL carries."""
    page.goto(base + "/sessions")
    check("the banner says the log is verified, with records, checkpoints and key id",
          "Verified." in page.inner_text("#verification") and "key id" in page.inner_text("#verification"), page.inner_text("#verification"))
    rows = table(page, "#sessions")
    shown = [row[-1] for row in rows]
    check("the sessions table shows exactly the scenario's streams", sorted(shown) == sorted(streams), (len(shown), len(streams)))
    page.screenshot(path=SHOTS + "/sessions.png", full_page=True)

    expected = sorted(s for s, r in streams.items() if r.get("service") == "shell")
    page.select_option("#filter-service", "shell")
    page.click("button[type=submit]")
    filtered = [row[-1] for row in table(page, "#sessions")]
    check("filtering by service shows only those streams", sorted(filtered) == expected, (filtered, expected))
    check("the filter is in the URL", "service=shell" in page.url, page.url)
    shared = page.context.new_page()
    shared.goto(page.url)
    check("the filtered URL opened again shows the same view", [row[-1] for row in table(shared, "#sessions")] == filtered)
    shared.close()
    return expected


def filters_and_exports(context, page, base, streams, closes):
    """Each filter narrows to what the log says; the view exports as CSV, JSON Lines and a bundle."""
    expected = sorted(s for s, r in streams.items() if r.get("service") == "shell")
    denied = sorted(s for s, r in streams.items() if r["type"] == "stream_deny" and r.get("outcome") == "denied")
    page.goto(base + "/sessions?outcome=denied")
    check("filtering by outcome shows the denied streams", sorted(row[-1] for row in table(page, "#sessions")) == denied)
    vendor = sorted(s for s, r in streams.items() if r.get("operator") == "vendor2")
    page.goto(base + "/sessions?operator=vendor2&node=node-17")
    check("filtering by operator and node", sorted(row[-1] for row in table(page, "#sessions")) == vendor, vendor)
    crashed = sorted(s for s, r in closes.items() if r.get("outcome") == "gateway_crash")
    page.goto(base + "/sessions?q=GATEWAY_CRASH")
    check("free text finds the crashed streams (case-insensitive)", sorted(row[-1] for row in table(page, "#sessions")) == crashed)
    first = min(r["time"] for r in streams.values())
    page.goto(base + "/sessions?until=" + urllib.parse.quote("2000-01-01"))
    check("a time range before the log shows nothing", table(page, "#sessions") == [] and page.inner_text("#match-count") == "0")
    page.goto(base + "/sessions?from=" + urllib.parse.quote(first[:16]))
    check("a time range from the first stream's minute shows them all", len(table(page, "#sessions")) == len(streams))
    page.goto(base + "/sessions?service=shell")
    page.screenshot(path=SHOTS + "/sessions-filtered.png", full_page=True)
    csv = context.request.get(base + "/sessions.csv?service=shell").text().strip().split("\r\n")
    check("the filtered view exports as CSV", len(csv) == len(expected) + 1 and csv[0].startswith("time,stream"), csv[:3])
    jsonl = [json.loads(line) for line in context.request.get(base + "/sessions.jsonl?operator=vendor2").text().splitlines()]
    check("the filtered view exports as JSON Lines with the records as stored",
          sorted(j["stream"] for j in jsonl) == vendor and all(j["open"]["operator"] == "vendor2" for j in jsonl))
    bundle = os.path.join(WORK, "evidence.tar")
    open(bundle, "wb").write(context.request.get(base + "/evidence.tar").body())
    verify = subprocess.run([TUNNEL, "audit", "verify", bundle], capture_output=True, text=True)
    check("the evidence bundle download verifies with tunnel audit verify", verify.returncode == 0, verify.stdout + verify.stderr)
    return bundle


def timeline_and_player(page, base, streams, closes):
    """The node timeline shows the crash closes; the stream page plays the shell to its marker."""
    crashed = sorted(s for s, r in closes.items() if r.get("outcome") == "gateway_crash")
    page.goto(base + "/node?name=node-17")
    crash_rows = [row for row in table(page, "#timeline") if "gateway_crash" in row[3]]
    check("the node timeline shows every kill -9 crash close", len(crash_rows) == len(crashed) and len(crashed) >= 3, (len(crash_rows), len(crashed)))
    kinds = {row[2] for row in table(page, "#timeline")}
    check("the node timeline shows its join token, connects, enrollment and streams", {"token_create", "node_connect", "enroll", "stream_open", "stream_close"} <= kinds, kinds)
    page.screenshot(path=SHOTS + "/node-timeline.png", full_page=True)
    page.goto(base + "/nodes")
    page.screenshot(path=SHOTS + "/nodes.png", full_page=True)

    shell = next(s for s, r in closes.items() if r.get("recording") and r.get("recording_sha256"))
    page.goto(base + "/stream?id=" + urllib.parse.quote(shell))
    body = page.inner_text("main")
    check("the stream page shows its open and close fields and the policy rule",
          streams[shell]["rule"] in body and closes[shell]["recording_sha256"] in body and "next record" in body)
    page.wait_for_selector("#player[data-state=ready]", timeout=15000)
    check("the recording's SHA-256 matches its close record", page.get_attribute("#player", "data-sha") == "match")
    page.select_option("#speed", "16")
    page.click("#play")
    page.wait_for_selector("#player[data-state=ended]", timeout=30000)
    try:  # xterm.js fills its accessibility tree on its next render frame
        page.wait_for_function("() => document.querySelector('.xterm-accessibility-tree').innerText.includes('recorded-42')", timeout=10000)
    except Exception:
        pass
    tree = page.inner_text(".xterm-accessibility-tree")
    check("the player reaches the marker at the end of the recording, in the accessibility tree", "recorded-42" in tree, tree[-400:])
    page.screenshot(path=SHOTS + "/stream-player.png", full_page=True)
    page.eval_on_selector("#seek", "e => { e.value = 0; e.dispatchEvent(new Event('input')); }")
    page.wait_for_function("() => !document.querySelector('.xterm-accessibility-tree').innerText.includes('recorded-42')", timeout=10000)
    check("seeking back to the start clears the terminal", "0.0 /" in page.inner_text("#clock"), page.inner_text("#clock"))
    return shell


def no_javascript(browser, context, base, expected):
    """Everything but the player works with JavaScript off."""
    quiet = browser.new_context(java_script_enabled=False)
    quiet.add_cookies(context.cookies())
    plain = quiet.new_page()
    plain.goto(base + "/sessions")
    plain.select_option("#filter-service", "shell")
    plain.click("button[type=submit]")
    check("with JavaScript off, the filter form still works", sorted(row[-1] for row in table(plain, "#sessions")) == expected)
    quiet.close()


def tampered(page, shell):
    """A changed record: the red banner names it; a changed recording is marked."""
    def tamper(directory):
        path = sorted(glob.glob(directory + "/audit-*.jsonl"))[0]
        lines = open(path).read().split("\n")
        changed = lines[3].replace('"127.0.0.1:', '"10.9.9.9:') if '"127.0.0.1:' in lines[3] else lines[3].replace('"type":"', '"type":"x')
        assert changed != lines[3]
        lines[3] = changed
        open(path, "w").write("\n".join(lines))
        recording = glob.glob(directory + "/recordings/*.cast")[0]
        open(recording, "a").write('[9.9, "i", "rm -rf /tmp/evidence\\r"]\n[9.9, "o", "inserted later"]\n')
    url2, base2 = serve(copy_log("tampered", tamper))
    page.goto(url2)
    banner = page.inner_text("#verification")
    check("a tampered copy shows the red banner naming the changed line", "BROKEN" in banner and "audit-000001.jsonl, line 4" in banner, banner)
    check("the broken banner is red", page.eval_on_selector("#verification", "e => getComputedStyle(e).backgroundColor") == "rgb(179, 18, 27)")
    page.screenshot(path=SHOTS + "/tampered.png", full_page=True)
    page.click("#verification a")
    check("the banner links to the bad record, marked on its page", page.is_visible(".bad-record"), page.url)
    page.screenshot(path=SHOTS + "/record.png", full_page=True)
    page.goto(base2 + "/stream?id=" + urllib.parse.quote(shell))
    page.wait_for_selector("#player[data-state=ready]", timeout=15000)
    keys = page.inner_text("#keystrokes")
    check("keystroke events are listed with their time", "rm -rf /tmp/evidence" in keys and "recorded at 9.90 s" in keys, keys)
    check("a changed recording is marked before it plays", page.get_attribute("#player", "data-sha") == "mismatch" and "differs" in page.inner_text("#sha-mark"), page.inner_text("#sha-mark"))


def hostile_and_bundle(page, streams, bundle):
    """A record holding markup and terminal escapes renders as text; a bundle is served too."""
    def hostile(directory):
        path = sorted(glob.glob(directory + "/audit-*.jsonl"))[0]
        text = open(path).read()
        text = text.replace('"service":"shell"', '"service":' + json.dumps(HOSTILE), 1)
        open(path, "w").write(text)
    url3, base3 = serve(copy_log("hostile", hostile))
    page.goto(url3)
    cells = [row[4] for row in table(page, "#sessions")]
    scripts = page.eval_on_selector_all("main script", "s => s.length")
    pwned = page.evaluate("() => window.__pwned === 1")
    check("a service name holding <script> and escape sequences renders as text",
          any("<script>window.__pwned=1</script>\\x1b[31mred" in c for c in cells) and scripts == 0 and not pwned, [c for c in cells if "script" in c])
    page.screenshot(path=SHOTS + "/hostile.png", full_page=True)

    url4, base4 = serve(bundle)
    page.goto(url4)
    check("tunnel audit serve BUNDLE serves a verified export", "Verified." in page.inner_text("#verification") and len(table(page, "#sessions")) == len(streams))


try:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            main(browser)
            live(browser)
        finally:
            browser.close()
finally:
    for process in CONSOLES:
        process.terminate()
        process.wait(timeout=10)
    shutil.rmtree(WORK, ignore_errors=True)
print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
sys.exit(1 if RESULTS["failed"] else 0)
