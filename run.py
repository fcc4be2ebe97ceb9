"""Bootstrap: one command that works on a machine with nothing but Python.

    python3 run.py test [ARGS]    ruff, then pytest: the unit, parity, training and diffusers tiers (the
                                  pip-install test included); the live, browser, ComfyUI and GPU tiers run where
                                  their host is given (WEBUI_DIR / FORGE_DIR / COMFYUI_DIR / CUDA), skipped with one
                                  line each otherwise
    python3 run.py demo [ARGS]    the CPU demo of the average-brightness problem and its fix
    python3 run.py gpu [ARGS]     the GPU check on a CUDA machine (`python -m sing_core bench gpu ARGS`; the test
                                  tier's requirements, diffusers included); --device cpu --rehearse on a CPU

It makes .venv beside this file, installs requirements/<tier>.txt into it once (re-installing only when that
file changes) and runs the command inside it, so the system Python is never modified.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = {"test": "test.txt", "demo": "tools.txt", "gpu": "test.txt"}


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest(name: str) -> str:
    # Hash the requirement file and every file it includes, so editing core.txt re-installs the test tier too.
    digest = hashlib.sha256()
    pending = [ROOT / "requirements" / name]
    while pending:
        path = pending.pop()
        text = path.read_text()
        digest.update(text.encode())
        pending += [path.parent / line.split(None, 1)[1] for line in text.splitlines() if line.startswith("-r ")]
    return digest.hexdigest()


def ensure_env(tier: str) -> Path:
    python = venv_python()
    if not python.exists():
        print(f"run.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    name = REQUIREMENTS[tier]
    stamp = VENV / f".installed-{tier}"
    want = requirements_digest(name)
    if not stamp.exists() or stamp.read_text() != want:
        # pip's own lines are the progress: a first install downloads torch (CPU) and the rest, about a minute
        print(f"run.py: installing requirements/{name} into {VENV.name} (the first time about a minute; pip's "
              "progress follows)", flush=True)
        subprocess.run(
            [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "on", "-r",
             ROOT / "requirements" / name],
            check=True,
        )
        stamp.write_text(want)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in REQUIREMENTS:
        print(__doc__)
        return 2
    tier, rest = argv[0], argv[1:]
    python = ensure_env(tier)
    if tier == "demo":
        return subprocess.call([python, "-m", "sing_core", "demo", *rest], cwd=ROOT)
    if tier == "gpu":
        return subprocess.call([python, "-m", "sing_core", "bench", "gpu", *rest], cwd=ROOT)
    lint = subprocess.call([python, "-m", "ruff", "check", "."], cwd=ROOT)
    tests = subprocess.call([python, "-m", "pytest", *rest], cwd=ROOT)
    return lint or tests


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
