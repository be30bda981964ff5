"""End-to-end test of the plugin: build it, run `funnel simulate` on every scenario, compare.

Run it in this folder with

    python3 -m unittest

It needs `funnel` on PATH, or FUNNEL_BIN=/path/to/funnel, and python3 with venv + pip (build.sh
installs componentize-py from PyPI the first time). It uses nothing but the standard library.

Where the scenarios come from: `./scenarios`, `./config.json` and `./expected` when they are
beside this file (a standalone project made by `funnel plugin new --lang python`), otherwise
the repository's `../sms-first/` (the example as it lives in the funnel repository).
Each scenario `scenarios/NAME.json` is checked against `expected/NAME.jsonl`: what
`funnel simulate` prints, one JSON object a line. `FUNNEL_BLESS=1 python3 -m unittest` writes
the timelines it gets as the expected ones instead.
"""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fixtures() -> Path:
    """The folder holding scenarios/, config.json and expected/."""
    if (HERE / "scenarios").is_dir() and (HERE / "config.json").is_file() and (HERE / "expected").is_dir():
        return HERE
    return HERE.parent / "sms-first"


def funnel_bin() -> str:
    """The funnel binary: $FUNNEL_BIN, else `funnel` on PATH."""
    explicit = os.environ.get("FUNNEL_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise AssertionError(f"FUNNEL_BIN={explicit} is not an executable file")
        return explicit
    found = shutil.which("funnel")
    if found is None:
        raise AssertionError(
            "no funnel binary: put `funnel` on PATH or set FUNNEL_BIN=/path/to/funnel "
            "(in the funnel repository: cargo build -p funnel-host --bin funnel, then "
            "FUNNEL_BIN=<target dir>/debug/funnel)"
        )
    return found


class PluginTest(unittest.TestCase):
    wasm: Path
    funnel: str

    @classmethod
    def setUpClass(cls):
        cls.funnel = funnel_bin()
        build = subprocess.run(["bash", str(HERE / "build.sh")], capture_output=True, text=True)
        if build.returncode != 0:
            raise AssertionError(f"build.sh failed (exit {build.returncode}):\n{build.stderr}")
        cls.wasm = Path(build.stdout.strip().splitlines()[-1])
        if not cls.wasm.is_file():
            raise AssertionError(f"build.sh printed {cls.wasm}, which is not a file")

    def simulate(self, scenario: Path, config: Path) -> subprocess.CompletedProcess:
        args = [self.funnel, "simulate", "--plugin", str(self.wasm), "--config", str(config), "--scenario", str(scenario)]
        return subprocess.run(args, capture_output=True, text=True)

    def test_every_scenario_prints_its_expected_timeline(self):
        base = fixtures()
        scenarios = sorted((base / "scenarios").glob("*.json"))
        self.assertTrue(scenarios, f"no scenarios in {base / 'scenarios'}")
        for scenario in scenarios:
            with self.subTest(scenario=scenario.name):
                expected_file = base / "expected" / f"{scenario.stem}.jsonl"
                if os.environ.get("FUNNEL_BLESS") != "1":
                    self.assertTrue(expected_file.is_file(), f"no expected output {expected_file}")
                out = self.simulate(scenario, base / "config.json")
                self.assertEqual(out.returncode, 0, f"funnel simulate failed:\n{out.stderr}")
                if os.environ.get("FUNNEL_BLESS") == "1":
                    # Accept the new timeline as the expected one.
                    if not expected_file.is_file() or expected_file.read_text() != out.stdout:
                        expected_file.write_text(out.stdout)
                        print(f"FUNNEL_BLESS: wrote {expected_file}")
                    continue
                got = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
                want = [json.loads(line) for line in expected_file.read_text().splitlines() if line.strip()]
                self.assertEqual(got, want, f"{scenario.name}: funnel simulate printed\n{out.stdout}")

    def test_a_bad_config_is_refused_at_its_field(self):
        base = fixtures()
        scenario = sorted((base / "scenarios").glob("*.json"))[0]
        config = json.loads((base / "config.json").read_text())
        config.update({"sms_after": "15m", "email_after": "10m"})  # the email before the SMS
        with tempfile.TemporaryDirectory() as tmp:
            bad = Path(tmp) / "bad.json"
            bad.write_text(json.dumps(config))
            out = self.simulate(scenario, bad)
        self.assertEqual(out.returncode, 2, f"expected exit 2, got {out.returncode}:\n{out.stdout}{out.stderr}")
        self.assertIn("email_after", out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1, f"one line:\n{out.stderr}")


if __name__ == "__main__":
    unittest.main()
