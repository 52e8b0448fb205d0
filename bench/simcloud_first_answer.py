#!/usr/bin/env python3
"""Create -> first answer on the tailnet, on the simulated cloud: stock image vs golden image.

Stock (cloud=gcp): `site.yml` from nothing (network, identity, node; first boot installs Tailscale
and joins; configure.yml over the tailnet installs and hardens, pulls the model; ask.yml asks from
the controller). Golden (cloud=aws): `create.yml` only; first boot joins and pulls the model itself,
and the first answer is fetched from the controller through the tailnet. Both figures are whole wall
times measured by the end-to-end tests (tests/functional/simcloud/test_site_{gcp,aws}_simcloud.py),
run here once each. The two clouds' nodes are the same bodies; only the API emulators differ. The
golden image is built first if its key is not cached (not counted).

    eval "$(rig/setup --env)"; python bench/simcloud_first_answer.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TESTS = [f"tests/functional/simcloud/test_site_{cloud}_simcloud.py" for cloud in ("gcp", "aws")]
WANTED = {
    "test_site_from_nothing_to_an_answer_then_rerun_stop_start_destroy": "site_stock_seconds",
    "test_a_golden_image_node_answers_without_configure_then_site_rerun_stop_start_destroy": (
        "create_to_answer_golden_seconds"
    ),
}


def main():
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.xml")
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "collections"))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS, "-k", " or ".join(WANTED)]
        proc = subprocess.run(cmd + ["--junitxml", report], cwd=ROOT, env=env, check=False)
        if proc.returncode != 0 or not os.path.exists(report):
            sys.exit("the end-to-end tests failed: no figures")
        figures = {}
        for case in ET.parse(report).iter("testcase"):
            for prop in case.iter("property"):
                if WANTED.get(case.get("name")) == prop.get("name"):
                    figures[prop.get("name")] = float(prop.get("value"))
    stock, golden = figures["site_stock_seconds"], figures["create_to_answer_golden_seconds"]
    print("simulated cloud, gemma3:270m, create -> first answer on the tailnet (wall seconds)")
    print(f"  stock image, gcp  (site.yml: create, configure over the tailnet, ask): {stock:7.1f}")
    print(f"  golden image, aws (create.yml; first boot joins and pulls the model):  {golden:7.1f}")
    print(f"  golden / stock: {golden / stock:.2f}")


if __name__ == "__main__":
    main()
