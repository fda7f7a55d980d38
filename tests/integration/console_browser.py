#!/usr/bin/python3
"""Drives Debian's chromium (headless, DevTools protocol over python3-websocket) through the
verifier's web console, for console_browser_test.cc.

  console_browser.py --url URL#token=... --expect FILE --violation PROGRAM --out DIR

Loads the sign-in link, checks the fleet table against the fleet state in FILE (JSON from
the Fleet API: node_id, hostname, status, workloads), saves DIR/console-fleet.png, starts
PROGRAM (a workload that breaks the policy) and waits, without reloading the page, for the
node's row to turn contraindicated; saves DIR/console-fleet-violation.png, opens the node's
detail (timeline) and saves DIR/console-node.png. Prints one JSON line with what the page
showed; exits non-zero, naming the check, when one fails.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket
from cryptography import x509
from cryptography.hazmat.primitives import serialization

CHROMIUM = "/usr/bin/chromium"
# Generous bounds that only keep a broken run from hanging; no check depends on timing.
WAIT_SECONDS = 90


class Failure(Exception):
    pass


def spki_pin(cert_path):
    """base64 SHA-256 of the certificate's SubjectPublicKeyInfo, as chromium's
    --ignore-certificate-errors-spki-list takes it: trust exactly this server key."""
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class Browser:
    def __init__(self, server_cert, profile):
        self.profile = profile
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-sync",
             "--disable-background-networking", "--disable-component-update",
             "--password-store=basic", "--use-mock-keychain", "--hide-scrollbars",
             "--font-render-hinting=none", "--window-size=1440,900",
             "--ignore-certificate-errors-spki-list=" + spki_pin(server_cert),
             "--user-data-dir=" + profile, "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "chromium.log"), "wb"))
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + WAIT_SECONDS
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if self.proc.poll() is not None or time.time() > deadline:
                raise Failure("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        with open(port_file) as f:
            port = int(f.readline())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True,
                                              timeout=WAIT_SECONDS)
        self.next_id = 0
        self.console_errors = []
        # What the page loaded and logged, for the failure message.
        self.trace = []
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Log.enable")
        self.call("Network.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  width=1440, height=900, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            method = msg.get("method", "")
            if method in ("Network.responseReceived", "Network.loadingFailed",
                          "Runtime.consoleAPICalled"):
                params = msg["params"]
                self.trace.append(f"{method}: " + json.dumps(
                    params.get("response", {}).get("url", "") + " " +
                    str(params.get("response", {}).get("status", "")) +
                    params.get("errorText", "") +
                    " ".join(str(a.get("value", "")) for a in params.get("args", [])))[:300])
            if msg.get("method") == "Runtime.exceptionThrown":
                self.console_errors.append(msg["params"]["exceptionDetails"].get("text", ""))
            if msg.get("method") == "Log.entryAdded":
                entry = msg["params"]["entry"]
                # Content-security-policy violations and script errors; a browser's own
                # probe for /favicon.ico is a network entry and no fault of the page.
                if entry.get("level") == "error" and entry.get("source") != "network":
                    self.console_errors.append(entry.get("text", ""))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise Failure(f"{method}: {msg['error']}")
                return msg["result"]

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise Failure(f"script error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, what, expression):
        deadline = time.time() + WAIT_SECONDS
        # Until the page has loaded, the elements may not exist yet: that is "not yet".
        guarded = "(() => { try { return (%s); } catch (e) { return false; } })()" % expression
        while time.time() < deadline:
            value = self.eval(guarded)
            if value:
                return value
            time.sleep(0.2)
        raise Failure(f"timed out waiting for {what}")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


ROW = "document.querySelector('#fleet-rows tr[data-node-id=\"%s\"]')"


def row_state(browser, node_id):
    return browser.eval("""(() => {
      const row = %s;
      if (!row) return null;
      return {
        status: row.dataset.status,
        text: row.innerText,
        workloads: [...row.querySelectorAll('td.workloads .chip')].map(c => [c.dataset.workload, c.title]),
        rules: [...row.querySelectorAll('td.failing .rule-id')].map(e => e.textContent),
        controls: [...row.querySelectorAll('td.failing .control')].map(e => e.textContent),
        rows: document.querySelectorAll('#fleet-rows tr').length,
      };
    })()""" % (ROW % node_id))


def run(args, browser):
    with open(args.expect) as f:
        expect = json.load(f)
    node_id = expect["node_id"]

    browser.call("Page.navigate", url=args.url)
    # Signed in with the token, which the page took out of the address bar.
    browser.wait_for("the signed-in fleet view",
                     "!document.getElementById('fleet-view').hidden && "
                     "document.querySelectorAll('#fleet-rows tr').length > 0")
    location = browser.eval("location.href")
    if "token" in location:
        raise Failure(f"the token stayed in the address bar: {location}")
    viewer = browser.eval("document.getElementById('viewer').textContent")
    if expect["viewer"] not in viewer:
        raise Failure(f"viewer shows {viewer!r}, expected {expect['viewer']!r}")
    browser.wait_for("the live indicator", "document.getElementById('live').classList.contains('on')")

    # The table against the fleet state.
    before = row_state(browser, node_id)
    if before is None:
        raise Failure(f"no row for node {node_id}")
    if before["rows"] != expect["nodes"]:
        raise Failure(f"{before['rows']} rows, the fleet has {expect['nodes']} nodes")
    if before["status"] != expect["status"]:
        raise Failure(f"row status {before['status']!r}, fleet says {expect['status']!r}")
    if expect["hostname"] not in before["text"]:
        raise Failure(f"row does not show hostname {expect['hostname']!r}: {before['text']!r}")
    shown = sorted(w[0] for w in before["workloads"])
    if shown != sorted(expect["workloads"]):
        raise Failure(f"row shows workloads {shown}, fleet has {sorted(expect['workloads'])}")
    if before["rules"]:
        raise Failure(f"an affirming node shows failing rules {before['rules']}")
    browser.screenshot(os.path.join(args.out, "console-fleet.png"))

    # A marker on the window: it survives only if the page is never reloaded.
    browser.eval("window.vigilTestMarker = 'kept'")
    violation = subprocess.Popen([args.violation], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        browser.wait_for("the row to turn contraindicated",
                         (ROW % node_id) + "?.dataset.status === 'contraindicated'")
        if browser.eval("window.vigilTestMarker") != "kept":
            raise Failure("the page was reloaded")
        after = row_state(browser, node_id)
        browser.wait_for("the row's highlight to fade", "!document.querySelector('tr.flash')")
        browser.screenshot(os.path.join(args.out, "console-fleet-violation.png"))

        # The node's detail and its timeline, by a link (hash route, no reload).
        browser.eval((ROW % node_id) + ".click()")
        browser.wait_for("the node's timeline",
                         "!document.getElementById('node-view').hidden && "
                         "document.getElementById('node-head').dataset.status === 'contraindicated' && "
                         "document.querySelectorAll('#node-timeline li.contraindicated').length > 0")
        timeline = browser.eval(
            "[...document.querySelectorAll('#node-timeline li')].map(li => li.className)")
        browser.screenshot(os.path.join(args.out, "console-node.png"))
        if browser.eval("window.vigilTestMarker") != "kept":
            raise Failure("the page was reloaded")
        oscal = browser.eval("document.getElementById('oscal').getAttribute('href')")
        exported = browser.eval(
            "fetch(document.getElementById('oscal').href).then(r => r.json())"
            ".then(j => j['assessment-results'] ? 'oscal' : 'other')")
    finally:
        violation.terminate()
        violation.wait()
    if browser.console_errors:
        raise Failure(f"the page logged errors: {browser.console_errors}")
    print(json.dumps({"before": before, "after": after, "timeline": timeline,
                      "oscal_link": oscal, "oscal_download": exported}), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--server-cert", required=True)
    parser.add_argument("--expect", required=True)
    parser.add_argument("--violation", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    profile = tempfile.mkdtemp(prefix="vigil-console-chromium-")
    browser = None
    try:
        browser = Browser(args.server_cert, profile)
        run(args, browser)
    except Failure as e:
        print(f"console_browser.py: {e}", file=sys.stderr)
        if browser is not None:
            print("\n".join(["page trace:"] + browser.trace + browser.console_errors),
                  file=sys.stderr)
        if browser is not None:
            try:
                browser.screenshot(os.path.join(args.out, "console-failure.png"))
            except Exception:  # the failure screenshot is a courtesy
                pass
        return 1
    finally:
        if browser is not None:
            browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(main())
