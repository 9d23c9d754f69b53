"""One document's session: its blocks run in order against a throwaway control plane.

A session works in a copy of the repository (a clone, as the README's reader has one;
``.venv`` is the suite's own, linked), with ``tenantctl`` and ``python`` on the PATH from
that virtualenv and ``TENANTVEC_HOME`` in a temporary directory -- nothing else set but
what makes the outside services here: the OpenAI and Voyage APIs (a fake held to their
wire format) and, for a document that uses it, Neon's (the fake held to its published
spec). Shell blocks share variables and the working directory; Python blocks share one
interpreter (``kernel``); every process runs in the session's box (``box``). Closing the
session stops everything it started -- servers in the background, the embedded
Postgres, instances -- and removes the directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from tests.docs.blocks import Block, console_commands, output_matches
from tests.docs.box import Box
from tests.docs.clone import copy_clone
from tests.docs.givens import ENVIRONMENT, FILES, needed

__all__ = ["BlockFailed", "DocSession"]

BLOCK_TIMEOUT = 600.0
FAKE_OPENAI_KEY = "sk-doc-test-0123456789"
# docs/neon.md exports this placeholder as the Neon key: the fake takes it.
NEON_KEY = "napi_..."
NEON_TEMPLATE_PROJECT = "quiet-river-123456"
_FAKE_EMBEDDINGS_PORT = 18099
_FAKE_NEON_PORT = 18098


class BlockFailed(Exception):
    """A block did not do what its document says; the message shows what it did."""


class DocSession:
    def __init__(self, root: Path, doc: str, blocks: list[Block]) -> None:
        self.doc = doc
        self.failed: str | None = None  # the id of the block that failed
        self.scratch = Path(tempfile.mkdtemp(prefix="tenantvec-doc-"))
        self.scratch.chmod(0o755)  # the Postgres service user reaches TENANTVEC_HOME
        self.workdir = self.scratch / "clone"
        copy_clone(root, self.workdir)
        self.home = self.scratch / "home"
        self._state = self.scratch / "state.env"
        self._cwd = self.workdir
        self._groups: list[int] = []  # process groups of the blocks, with what they left
        self._services: list[subprocess.Popen[Any]] = []
        self._kernel: subprocess.Popen[Any] | None = None
        self._kernel_io: tuple[IO[str], IO[str]] | None = None
        self._count = 0
        self.box = Box()
        try:
            self.env = self._base_env(root)
            self._provide([b.text for b in blocks if b.runs and b.mark is None])
        except BaseException:
            self.close()
            raise

    # -- running blocks --------------------------------------------------------------

    def run(self, block: Block) -> None:
        if block.file_name is not None:
            path = self._cwd / block.file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text)
        elif block.lang == "python":
            self._python(block)
        elif block.lang == "console":
            for command in console_commands(block):
                output = self._shell(command.text, f"{block.doc}:{command.line}", console=True)
                if not output_matches(command.expected, output):
                    raise BlockFailed(
                        f"{block.doc}:{command.line}: $ {command.text}\n"
                        f"--- the document says it prints:\n{command.expected}\n"
                        f"--- it printed:\n{output}"
                    )
        else:
            text = block.text
            if block.mark is not None and block.mark.kind == "dry-run":
                text = re.sub(r"^(\s*)make ", r"\1make -n ", text, flags=re.M)
            self._shell(text, block.id)

    def _shell(self, text: str, name: str, *, console: bool = False) -> str:
        """Run ``text`` in the session's shell; what it printed on stdout. A console
        command's output is stdout and stderr as a terminal shows them, and ``[exit N]``
        after a command that failed (which the document then shows)."""
        self._count += 1
        script = self.scratch / f"block-{self._count}.sh"
        out = self.scratch / f"block-{self._count}.out"
        err = out if console else self.scratch / f"block-{self._count}.err"
        state, cwd = self._state, self.scratch / "state.cwd"
        script.write_text(
            "set -a\n"  # what a block assigns, later blocks (and Python) see
            # Started in the directory the last block left (OLDPWD comes with the state).
            f"[ -f {state} ] && . {state}\n"
            f"trap 'export -p > {state}; pwd > {cwd}' EXIT\n"
            "set -e -o pipefail\n" + text + "\n"
        )
        with open(out, "ab") as stdout, open(err, "ab") as stderr:
            process = self.box.popen(
                ["bash", str(script)],
                cwd=self._cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        self._groups.append(process.pid)
        try:
            code = process.wait(BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_group(process.pid)
            raise BlockFailed(f"{name}: still running after {BLOCK_TIMEOUT:g} s") from None
        if (cwd).exists():
            self._cwd = Path(cwd.read_text().strip())
        printed = out.read_text(errors="replace")
        if console:
            return printed + (f"[exit {code}]\n" if code else "")
        if code != 0:
            errors = err.read_text(errors="replace")
            raise BlockFailed(
                f"{name}: exit {code}\n--- the block:\n{text}\n--- stdout:\n{printed[-6000:]}"
                + (f"\n--- stderr:\n{errors[-6000:]}" if errors else "")
            )
        return printed

    def _python(self, block: Block) -> None:
        if self._kernel is None:
            self._start_kernel()
        assert self._kernel_io is not None
        requests, answers = self._kernel_io
        requests.write(
            json.dumps(
                {
                    "name": block.id,
                    "code": block.text,
                    "env": self._shell_env(),
                    "cwd": str(self._cwd),
                }
            )
            + "\n"
        )
        requests.flush()
        line = answers.readline()
        if not line:
            raise BlockFailed(f"{block.id}: the Python kernel died:\n{self._kernel_log()}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise BlockFailed(
                f"{block.id}:\n{answer['error']}\n--- it printed:\n{self._kernel_log()}"
            )

    def _start_kernel(self) -> None:
        ask_read, ask_write = os.pipe()
        answer_read, answer_write = os.pipe()
        log = open(self.scratch / "kernel.log", "ab")  # noqa: SIM115 - the kernel holds it
        self._kernel = self.box.popen(
            [sys.executable, "-m", "tests.docs.kernel", str(ask_read), str(answer_write)],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(ask_read, answer_write),
            start_new_session=True,
        )
        log.close()
        os.close(ask_read)
        os.close(answer_write)
        self._kernel_io = (os.fdopen(ask_write, "w"), os.fdopen(answer_read, "r"))

    def _kernel_log(self) -> str:
        return (self.scratch / "kernel.log").read_text(errors="replace")[-6000:]

    def _shell_env(self) -> dict[str, str]:
        """The environment the shell blocks left (what they exported)."""
        if not self._state.exists():
            return dict(self.env)
        dump = subprocess.run(
            ["bash", "-c", f". {self._state} && env -0"],
            env=self.env,
            capture_output=True,
            check=True,
        ).stdout
        pairs = (item.split(b"=", 1) for item in dump.split(b"\0") if b"=" in item)
        return {k.decode(): v.decode(errors="replace") for k, v in pairs}

    # -- what the session provides ---------------------------------------------------

    def _base_env(self, root: Path) -> dict[str, str]:
        keep = ("HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "LOGNAME")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        venv_bin = root / ".venv" / "bin"
        env["PATH"] = f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        env.update(
            {
                "VIRTUAL_ENV": str(root / ".venv"),
                "TENANTVEC_HOME": str(self.home),
                # A throwaway control plane: no fsync, a small cache.
                "TENANTVEC_PG_FSYNC": "false",
                "TENANTVEC_PG_SHARED_BUFFERS": "128MB",
                "TENANTVEC_OPENAI_BASE_URL": f"http://127.0.0.1:{_FAKE_EMBEDDINGS_PORT}/v1",
                "TENANTVEC_OPENAI_API_KEY": FAKE_OPENAI_KEY,
                "TENANTVEC_VOYAGE_BASE_URL": f"http://127.0.0.1:{_FAKE_EMBEDDINGS_PORT}/v1",
                "TENANTVEC_VOYAGE_API_KEY": FAKE_OPENAI_KEY,
                "TENANTVEC_NEON_API_URL": f"http://127.0.0.1:{_FAKE_NEON_PORT}/api/v2",
                "TENANTVEC_NEON_OPERATION_TIMEOUT": "30",
            }
        )
        if not self.box.netns:  # the machine's own ports: take free ones
            env["TENANTVEC_PG_PORT"] = str(_free_port())
            low = 27000 + 200 * (os.getpid() % 10)
            env["TENANTVEC_INSTANCE_PORTS"] = f"{low}-{low + 199}"
        return env

    def _provide(self, texts: list[str]) -> None:
        files, servers = needed(texts)
        for name in files:
            FILES[name](self.workdir / name.removeprefix("./"))
        for name in servers:
            self.env[name] = self._postgres(name.lower())
        self.env.update(ENVIRONMENT)
        self._service(
            [sys.executable, "-m", "tests.fakes.embeddings", "--port", str(_FAKE_EMBEDDINGS_PORT)]
            + ["--key", FAKE_OPENAI_KEY],
            _FAKE_EMBEDDINGS_PORT,
        )
        if any("neon" in text for text in texts):
            self.env["TENANTVEC_NEON_API_KEY"] = NEON_KEY  # Neon configured, as the fake
            self._service(
                [sys.executable, "-m", "tests.fakes.neon", "--port", str(_FAKE_NEON_PORT)]
                + ["--key", NEON_KEY, "--admin-dsn", self._postgres("neon")]
                + ["--operation-seconds", "0.05", "--latency", "0"]
                # The template project README.md's branch mode names.
                + ["--template-project", NEON_TEMPLATE_PROJECT],
                _FAKE_NEON_PORT,
            )

    def _postgres(self, name: str) -> str:
        """A Postgres server of the session's own; its superuser DSN."""
        home = self.scratch / f"given-{name}"
        home.mkdir()
        started = subprocess.run(
            self.box.command(
                [sys.executable, "-m", "tests.docs.givens", str(home), str(_free_port())]
            ),
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if started.returncode != 0:
            raise RuntimeError(f"could not start {name}'s Postgres: {started.stderr[-2000:]}")
        return started.stdout.strip().splitlines()[-1]

    def _service(self, args: list[str], port: int) -> None:
        log = open(self.scratch / f"service-{port}.log", "ab")  # noqa: SIM115
        self._services.append(
            self.box.popen(
                args,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        log.close()
        deadline = time.monotonic() + 60
        probe = self.box.command([sys.executable, "-c", _PROBE, str(port)])
        while subprocess.run(probe, stderr=subprocess.DEVNULL, check=False).returncode != 0:
            if time.monotonic() > deadline or self._services[-1].poll() is not None:
                log_text = (self.scratch / f"service-{port}.log").read_text(errors="replace")
                raise RuntimeError(f"{args[2]} did not start:\n{log_text[-2000:]}")
            time.sleep(0.1)

    # -- closing ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop everything the session started and remove its directory."""
        if self._kernel is not None:
            self._kernel.kill()
            self._kernel.wait()
            for stream in self._kernel_io or ():
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(Exception):  # the embedded server and every instance
            subprocess.run(
                self.box.command(["tenantctl", "down"]),
                cwd=self.workdir,
                env=self._shell_env(),
                capture_output=True,
                timeout=120,
                check=False,
            )
        for group in self._groups:
            self._kill_group(group)
        for service in self._services:
            self._kill_group(service.pid)
            service.wait()
        _stop_postmasters(self.scratch)
        self.box.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            time.sleep(0.2)


_PROBE = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop_postmasters(directory: Path) -> None:
    """Stop every Postgres whose data directory is under ``directory`` (immediate)."""
    for pidfile in directory.rglob("postmaster.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split("\n", 1)[0])
            os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 10
    while any(directory.rglob("postmaster.pid")) and time.monotonic() < deadline:
        time.sleep(0.1)
