"""The container image and the scheduled job: pinned dependencies, bytecode compiled at build, and a CronJob
whose window is the one the README documents. No Docker daemon is needed: the Dockerfile is read, and what
it does to the bytecode is done here to a copy of the package and checked with the real interpreter."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import pytest as _pytest

tomllib = _pytest.importorskip("tomllib")  # Python 3.11+
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "scripts" / "constraints.txt"
DOCKERFILE = ROOT / "scripts" / "Dockerfile"
CRONJOB = ROOT / "scripts" / "k8s" / "cronjob.yaml"


def pins() -> dict[str, str]:
    result = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"{line!r} in {CONSTRAINTS.name} is not pinned with =="
            result[canonicalize_name(name)] = version
    return result


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def test_constraints_pin_every_runtime_dependency_within_its_range():
    pinned = pins()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} (pyproject.toml) is not pinned in scripts/constraints.txt"
        assert Version(pinned[name]) in requirement.specifier, \
            f"{name}=={pinned[name]} does not satisfy pyproject.toml's {requirement}"


def test_constraints_pin_the_whole_runtime_closure_of_this_environment():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from constraints import runtime_closure
    finally:
        sys.path.pop(0)
    missing = sorted(set(runtime_closure()) - set(pins()))
    assert not missing, f"not pinned (run scripts/constraints.py): {missing}"


def test_pip_resolves_the_project_to_exactly_the_pins(tmp_path):
    report = tmp_path / "report.json"
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                               "--report", str(report), "--constraint", str(CONSTRAINTS), str(ROOT)],
                              capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.skip("pip could not reach a package index within 240 s (offline?)")
    if done.returncode != 0 and re.search(r"(?i)connection|resolve host|network is unreachable|timed out", done.stderr):
        pytest.skip(f"no package index reachable for `pip install --dry-run`: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    installed = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                 for item in json.loads(report.read_text())["install"]}
    installed.pop("bluegreen")
    assert installed == pins()


def dockerfile_runs() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("RUN ")]


def test_the_image_installs_with_the_constraints_and_compiles_its_bytecode():
    text = DOCKERFILE.read_text()
    assert "COPY scripts/constraints.txt" in text
    installs = [run for run in dockerfile_runs() if "pip install" in run]
    assert installs and all(re.search(r"(--constraint|-c)\s+\S*constraints\.txt", run) for run in installs)
    compiles = [run for run in dockerfile_runs() if "compileall" in run]
    assert compiles or not any("--no-compile" in run for run in installs), \
        "pip --no-compile without compileall: the pod would compile at every start"
    # The pins were made with one Python minor version: the image must use the same.
    made_with = re.search(r"Python (\d+\.\d+)", CONSTRAINTS.read_text()).group(1)
    assert all(f"python:{made_with}" in line for line in text.splitlines() if line.startswith("FROM python"))
    if compiles:
        assert f"/usr/local/lib/python{made_with}" in compiles[0]  # the stdlib and the site-packages


def compileall_argv(target: Path) -> list[str]:
    """The image's compileall command, aimed at ``target``."""
    run = next(run for run in dockerfile_runs() if "compileall" in run)
    words = shlex.split(run.split("&&")[0])
    assert words[:3] == ["python", "-m", "compileall"]
    return [sys.executable, "-m", "compileall", *[w for w in words[3:] if not w.startswith("/")], str(target)]


def test_the_compiled_bytecode_is_used_on_a_read_only_tree(tmp_path):
    """What the image does, done to a copy of the package: afterwards, with PYTHONDONTWRITEBYTECODE and the
    sources touched (a newer mtime, as a COPY may give), every bluegreen module of `rollback` loads from its
    .pyc and nothing is compiled again."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "bluegreen", site / "bluegreen", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(compileall_argv(site), check=True, capture_output=True, timeout=120)
    later = time.time() + 3600
    for source in site.rglob("*.py"):
        import os

        os.utime(source, (later, later))
    for path in sorted(site.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        done = subprocess.run([sys.executable, "-v", "-c", "import bluegreen.cli, bluegreen.commands.rollback"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path,
                              env={"PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin"})
    finally:
        for path in site.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 0, done.stderr[-2000:]
    ours = str(site / "bluegreen")
    loaded = [line for line in done.stderr.splitlines() if line.startswith("# code object from") and ours in line]
    from_source = [line for line in loaded if not line.rstrip("'").endswith(".pyc")]
    assert len(loaded) >= 5 and not from_source, f"compiled at start: {from_source}"


def cronjob() -> dict:
    return next(doc for doc in yaml.safe_load_all(CRONJOB.read_text()) if doc and doc["kind"] == "CronJob")


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_the_cronjob_window_is_the_one_the_readme_documents():
    job = cronjob()
    args = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    window = (flag(args, "--not-before"), flag(args, "--not-after"))
    readme = (ROOT / "README.md").read_text()
    documented = re.findall(r"bluegreen shift --to green --resume --max-steps 1 --not-before (\S+) --not-after (\S+)",
                            readme)
    assert documented, "the README no longer shows the scheduled job's command"
    assert set(documented) == {window}, f"README says {documented}, the CronJob runs {window}"
    # The schedule starts the job inside its own window, in the zone the pod reads HH:MM in (UTC).
    assert job["spec"]["timeZone"] == "Etc/UTC"
    minute, hour = job["spec"]["schedule"].split()[:2]
    start = f"{int(hour):02d}:{int(minute):02d}"
    assert window[0] <= start <= window[1]
