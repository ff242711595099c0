"""The report as a reader sees it: rendered by headless Chromium from disk, with the network trapped."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from dlbench.report.folder import write_report
from dlbench.testing.samples import make_record, make_records

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed "
                                "(apt-get install chromium)")

# Chromium's own service traffic (component updater, Google account check, network time), sent whatever the
# page is; Debian's wrapper exports API keys, which turns some of it on. Nothing else may reach the trap.
BROWSER_SERVICES = {"update.googleapis.com", "accounts.google.com", "clients2.google.com",
                    "clientservices.googleapis.com", "safebrowsing.googleapis.com", "redirector.gvt1.com",
                    "optimizationguide-pa.googleapis.com", "content-autofill.googleapis.com"}


class ProxyTrap:
    """A local socket Chromium is told to use as its proxy: it records who tried to go where, serves nothing."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(32)
        self.port = self.server.getsockname()[1]
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    self.requests.append(connection.recv(1024).decode("latin-1").split("\r\n")[0])
                except OSError:
                    self.requests.append("(connected, sent nothing)")

    @property
    def hosts(self) -> set[str]:
        """Target hosts of the requests: 'CONNECT host:443 ...' or 'GET http://host/path ...'."""
        hosts = set()
        for line in self.requests:
            parts = line.split()
            target = parts[1] if len(parts) > 1 else line
            target = target.split("://", 1)[-1]
            hosts.add(target.split("/", 1)[0].rsplit(":", 1)[0])
        return hosts

    def close(self) -> None:
        self.server.close()


def chromium(page: Path, tmp_path: Path, trap: ProxyTrap, screenshot: Path) -> str:
    """Render ``page`` headless with all traffic sent to the trap; return the DOM, write the screenshot."""
    profile = tmp_path / f"profile-{screenshot.stem}"
    profile.mkdir()
    process = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
         "--disable-client-side-phishing-detection", "--disable-features=NetworkTimeServiceQuerying,"
         "OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
         f"--user-data-dir={profile}", f"--proxy-server=http://127.0.0.1:{trap.port}",
         "--proxy-bypass-list=<-loopback>", "--hide-scrollbars", "--window-size=1440,2200",
         f"--screenshot={screenshot}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=90)
    assert process.returncode == 0, process.stderr[-2000:]
    return process.stdout


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])



def visit_control_page(trap: ProxyTrap, tmp_path: Path) -> None:
    """Proves the trap is live: a page that does load something over the network gets caught."""
    control = tmp_path / "control.html"
    control.write_text('<img src="http://dlbench-control.invalid/x.png"><p>control</p>')
    chromium(control, tmp_path, trap, tmp_path / "control.png")


def page_requests(trap: ProxyTrap) -> list[str]:
    """What the pages under test requested: everything but the control page and the browser's own services."""
    return [r for r in trap.requests if r and "dlbench-control.invalid" not in r
            and not any(host in r for host in BROWSER_SERVICES)]


def render_offline(pages: dict[str, Path], tmp_path: Path) -> dict[str, str]:
    """Each page's DOM after Chromium rendered it (screenshots in ``tmp_path/<name>.png``) behind the trap,
    with the control page proving the trap was live and no page under test requesting anything."""
    trap = ProxyTrap()
    try:
        doms = {name: chromium(page, tmp_path, trap, tmp_path / f"{name}.png") for name, page in pages.items()}
        visit_control_page(trap, tmp_path)
    finally:
        trap.close()
    assert "dlbench-control.invalid" in trap.hosts, trap.requests
    requests = page_requests(trap)
    assert requests == [], requests
    return doms

def test_report_renders_from_disk_with_tables_and_charts_and_no_network(tmp_path):
    cases = [dict(framework=fw, variant=v, model=m, task=t, train=tr * k, infer=tr * 6 * k, latency_ms=l / k,
                  tta_s=40 / k, noise=n)
             for fw, v, k, n in (("pytorch", "eager", 1.0, 0.02), ("keras", "fit", 0.6, 0.03))
             for m, t, tr, l in (("softmax", "digits", 40000, 0.05), ("cnn", "digits", 2500, 0.4),
                                 ("cnn3", "digits", 1500, 0.7), ("lstm", "synthetic_text", 500, 2.0))]
    records = make_records(cases, repeats=3, seed=11)
    records.append(make_record("keras", "cnn_bn", "digits", variant="fit", status="crashed",
                               error="worker died with SIGSEGV <script>alert(1)</script>"))
    out = write_report(records, tmp_path / "report", sources=["results.jsonl"])
    page = out / "index.html"

    dom = render_offline({"report": page}, tmp_path)["report"]
    screenshot = tmp_path / "report.png"

    width, height = png_size(screenshot)
    assert (width, height) == (1440, 2200)
    assert screenshot.stat().st_size > 50_000  # a real page, not a blank one
    keep = os.environ.get("DLBENCH_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(screenshot, keep)

    for text in ("dlbench report", "Overview", "train samples/s", "infer samples/s", "p50 ms", "p99 ms",
                 "time-to-acc s", "Latency percentiles", "Accuracy against time-to-accuracy", "Fairness profile",
                 "Not measured", "worker died with SIGSEGV"):
        assert text in dom, text
    assert dom.count("<svg") == 4  # throughput on digits and on synthetic_text, latency, accuracy
    assert "<table" in dom and "<th" in dom and "<script" not in dom  # the hostile error stayed text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
