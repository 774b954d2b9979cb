"""The weekly lock refresh (.github/workflows/refresh-locks.yml), its steps run here.

The workflow's own `run:` scripts run through bash in a test workspace whose channel is
the local one: re-lock with a report, then pack and verify every variant and write the
pull request's body.  Only the channels differ from the runner's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.workspace import make_workspace

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "refresh-locks.yml"
VARIANTS = """\
[variants.app]
files = ["base.yml", "extra.yml"]
imports = ["numpy", "six", "dateutil"]

[variants.gpuapp]
files = ["base.yml", "gpu.yml"]
cuda = "12.9"
imports = ["six"]
gpu_imports = ["cudaprobe"]
"""


def steps() -> dict[str, dict]:
    data = yaml.safe_load(WORKFLOW.read_text())
    return {
        s.get("name", s.get("uses", s.get("run", ""))): s for s in data["jobs"]["lock"]["steps"]
    }


def test_the_pull_request_carries_what_the_steps_wrote() -> None:
    by_name = steps()
    pr = by_name["peter-evans/create-pull-request@v7"]["with"]
    assert pr["body-path"] == "pr-body.md"
    assert pr["add-paths"] == "locks/*.conda-lock.yml"
    names = list(by_name)
    assert names.index("Re-lock against conda-forge and rapidsai") < names.index(
        "Pack and verify every variant from its new lock"
    )


@pytest.mark.integration
def test_workflow_steps_lock_pack_verify_and_describe(local_channel: Path, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", local_channel)
    (ws / "environments" / "variants.toml").write_text(VARIANTS)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    by_name = steps()
    for name in (
        "Re-lock against conda-forge and rapidsai",
        "Pack and verify every variant from its new lock",
    ):
        proc = subprocess.run(
            ["bash", "-e", "-c", by_name[name]["run"]],
            cwd=ws,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert proc.returncode == 0, f"{name}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    body = (ws / "pr-body.md").read_text()
    # First lock: every package is new, so the table lists them with no old version.
    assert "| app | linux-64 | six (conda) | — |" in body, body
    for variant in ("app", "gpuapp"):
        line = next(ln for ln in body.splitlines() if ln.startswith(f"- `{variant}`: "))
        assert "OK" in line, body
    assert (ws / "locks" / "gpuapp.conda-lock.yml").is_file()
    assert not (ws / "dist").exists()  # removed after each variant, as on the runner
    shutil.rmtree(ws)
