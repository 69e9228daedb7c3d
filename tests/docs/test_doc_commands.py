"""The shell commands of README.md and docs/*.md work as written, pasted in order in a checkout
after the README's install, without an activated virtual environment.

Every ```sh block of a page runs, in order, in one bash session per page (variables carry over
from block to block, as in a terminal) from the repository folder, with PATH cleared of any
virtual environment. An HTML comment just before a block says how to treat it:

- ``<!-- docs-test: skip: REASON -->`` — not run here (installs, systemd, a real token, …);
  reported as a skipped test with the reason;
- ``<!-- docs-test: background: URL … -->`` — a server meant for its own terminal: started in the
  background, ready once every URL answers HTTP, stopped when the page is done;
- ``<!-- docs-test: expect: TEXT -->`` (repeatable) — the block's output must contain TEXT.

A block passes when none of its commands fails (an ERR trap in the session), no curl call gets a
5xx answer (502 aside: a documented answer when Discord or a model fails) or no answer at all,
and its expected texts appear. The servers' logs must show no
traceback and no 5xx either. The documented ports (8000, 8790, 8765) are replaced by free ones and
the database and secret key file live in a temporary folder, so the test runs beside anything
else and leaves the checkout as it was.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.webapp import free_port

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELLS = ("sh", "bash", "shell", "console")
DOCUMENTED_PORTS = (8000, 8790, 8765, 8766)
BLOCK_TIMEOUT = 90.0
READY_TIMEOUT = 60.0
DONE = "__docs_test_block_done__"
FENCE = re.compile(r"^```(\S*)\s*$")
NOTE = re.compile(r"^<!--\s*docs-test:\s*(skip|background|expect):\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    code: str
    skip: str | None = None
    background: list[str] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def shell_blocks(page: Path) -> list[Block]:
    """The page's shell blocks with the docs-test notes written just before each."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    notes: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        note = NOTE.match(line)
        fence = FENCE.match(line)
        if note:
            notes.append((note.group(1), note.group(2)))
        elif fence:
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            if fence.group(1) in SHELLS:
                block = Block(page, index + 1, "\n".join(lines[index + 1 : end]) + "\n")
                for kind, value in notes:
                    if kind == "skip":
                        block.skip = value
                    elif kind == "background":
                        block.background = value.split()
                    else:
                        block.expect.append(value)
                blocks.append(block)
            else:
                assert not notes, (
                    f"{page.name}:{index + 1}: docs-test notes before a non-shell block"
                )
            notes = []
            index = end
        elif line.strip():
            assert not notes, (
                f"{page.name}:{index + 1}: a docs-test note must be right before a block"
            )
        index += 1
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in shell_blocks(page)]


def test_every_command_block_is_a_fenced_shell_block() -> None:
    """Indented code blocks would escape this test: commands go in ```sh fences."""
    for page in PAGES:
        inside = False
        previous = ""
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if line.startswith("```"):
                inside = not inside
            elif not inside and line.startswith("    ") and not previous.strip():
                pytest.fail(f"{page.name}:{number}: indented code block; use a ```sh fence")
            previous = line
    assert len(ALL_BLOCKS) >= 15
    assert all(b.skip is None or b.skip for b in ALL_BLOCKS), "a skip needs its reason"


# ------------------------------------------------------------------------------------ session


class Session:
    """One page's terminal(s): a bash session for its blocks and its background servers."""

    def __init__(self, page: Path, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.ports = {port: free_port() for port in DOCUMENTED_PORTS}
        self.failed: str | None = None
        self.servers: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.env = self._environment()
        self.shell = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send(SESSION_SETUP)

    def _environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(
                ("NEONRAIN_", "DATABASE_URL", "INTERNAL_API_KEY", "HUMA_", "CLERK_", "DISCORD_")
            )
            and name not in ("VIRTUAL_ENV", "PYTHONPATH", "PORT", "HOST")
        }
        # Not activated: no virtual environment on PATH, as after a fresh clone and install.
        env["PATH"] = os.pathsep.join(
            part
            for part in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
            if not (Path(part) / "activate").exists()
        )
        env["DATABASE_URL"] = f"sqlite+aiosqlite:///{self.folder / 'neonrain.db'}"
        env["NEONRAIN_SECRET_KEY_FILE"] = str(self.folder / ".neonrain-secret")
        env["PORT"] = str(self.ports[8000])
        env["DOCS_TEST_HEADERS"] = str(self.folder / "headers")
        return env

    def _read(self) -> None:
        assert self.shell.stdout is not None
        for line in self.shell.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _send(self, text: str) -> None:
        assert self.shell.stdin is not None
        self.shell.stdin.write(text)
        self.shell.stdin.flush()

    def localize(self, text: str) -> str:
        for documented, port in self.ports.items():
            text = re.sub(rf"\b{documented}\b", str(port), text)
        return text

    def run(self, block: Block) -> str:
        """Runs ``block`` in the session; returns its output, or raises AssertionError."""
        script = self.folder / f"block-{block.line}.sh"
        script.write_text(self.localize(block.code))
        self._send(f'__failed=0\nsource {script}\necho "{DONE} $__failed"\n')
        output: list[str] = []
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                raise AssertionError(
                    f"{block.name} did not finish within {BLOCK_TIMEOUT:.0f} s:\n{''.join(output)}"
                ) from None
            if line is None:
                raise AssertionError(f"the shell ended during {block.name}:\n{''.join(output)}")
            if DONE in line:  # after the block's last line, which may lack its newline
                output.append(line[: line.index(DONE)])
                failed = line[line.index(DONE) :].split()[1] != "0"
                break
            output.append(line)
        text = "".join(output)
        print(f"--- {block.name}\n{text}")  # shown with -s, or when the test fails
        assert not failed, f"{block.name}: a command failed:\n{text}{self.server_logs()}"
        for expected in block.expect:
            assert self.localize(expected) in text, (
                f"{block.name}: expected {expected!r} in the output:\n{text}{self.server_logs()}"
            )
        return text

    def start(self, block: Block) -> None:
        """A block meant for its own terminal: started in the background until it answers."""
        script = self.folder / f"server-{block.line}.sh"
        script.write_text(self.localize(block.code))
        log = self.folder / f"server-{block.line}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", str(script)],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append((process, log))
        deadline = time.monotonic() + READY_TIMEOUT
        for url in (self.localize(u) for u in block.background):
            while True:
                try:
                    httpx.get(url, timeout=2)
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            f"{block.name}: {url} never answered\n{log.read_text()}"
                        ) from None
                    time.sleep(0.2)

    def server_logs(self) -> str:
        return "".join(
            f"\n--- {log.name}\n{log.read_text(errors='replace')[-4000:]}"
            for _p, log in self.servers
        )

    def check_server_logs(self) -> None:
        for _process, log in self.servers:
            text = log.read_text(errors="replace")
            assert "Traceback" not in text, f"{log.name}:\n{text[-6000:]}"
            assert not re.search(r'HTTP/1\.1" 5(0[013-9]|[1-9]\d)', text), (
                f"{log.name}:\n{text[-6000:]}"
            )

    def close(self) -> None:
        processes: list[subprocess.Popen[str] | subprocess.Popen[bytes]] = [
            self.shell,
            *(process for process, _log in self.servers),
        ]
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


#: Before the page's blocks: record failures instead of stopping, and a curl that fails on a 5xx
#: answer (or none) whatever options the block gives it — except 502, the API's documented answer
#: when Discord or a model provider failed (the walkthrough shows one on purpose).
SESSION_SETUP = r"""
exec 2>&1
set -o pipefail
__failed=0
trap '__failed=1; echo "docs-test: failed (status $?): $BASH_COMMAND"' ERR
curl() {
  local headers status
  headers=$(mktemp "$DOCS_TEST_HEADERS.XXXXXX")
  command curl -D "$headers" "$@"
  status=$?
  if grep -E '^HTTP/[0-9.]+ 5[0-9][0-9]' "$headers" | grep -qvE '^HTTP/[0-9.]+ 502'; then
    echo "docs-test: curl $* answered 5xx" >&2
    status=22
  fi
  rm -f "$headers"
  return $status
}
"""


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Path, Session]]:
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    if missing:
        reason = f"the documented commands need {', '.join(missing)}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    opened: dict[Path, Session] = {}
    try:
        yield opened
    finally:
        for session in opened.values():
            session.close()


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.name for b in ALL_BLOCKS])
def test_documented_command(
    block: Block, sessions: dict[Path, Session], tmp_path_factory: pytest.TempPathFactory
) -> None:
    if block.skip:
        pytest.skip(f"{block.name}: {block.skip}")
    for page, earlier in list(sessions.items()):
        if page != block.page:  # that page is done: stop its servers, read their logs
            earlier.close()
            del sessions[page]
            earlier.check_server_logs()
    session = sessions.get(block.page)
    if session is None:
        folder = tmp_path_factory.mktemp(block.page.stem)
        session = sessions[block.page] = Session(block.page, folder)
    if session.failed:
        pytest.skip(f"not run: {session.failed} failed before it")
    try:
        if block.background:
            session.start(block)
        else:
            session.run(block)
    except AssertionError:
        session.failed = block.name
        raise
    if block is ALL_BLOCKS[-1] or ALL_BLOCKS[ALL_BLOCKS.index(block) + 1].page != block.page:
        session.close()
        del sessions[block.page]
        session.check_server_logs()
