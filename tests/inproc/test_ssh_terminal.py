"""Remote output shown on a terminal cannot drive it: control characters come out escaped."""

import asyncio

from sshserver import CommandServer
from sshtarget import target_for

from fleet.core.errors import CommandError
from fleet.core.runner import HostRun, RunLimits
from fleet.core.terminal import printable
from fleet.core.transport import CommandResult
from fleet.ssh.transport import AsyncsshTransport


def test_printable_escapes_controls_but_newline_and_tab():
    assert printable("\x1b[2J\x1b[HALL HOSTS OK") == "\\x1b[2J\\x1b[HALL HOSTS OK"
    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("over\rwrite\x00\x07\x7f") == "over\\x0dwrite\\x00\\x07\\x7f"
    assert printable("\x9b31m csi and é ü ✓") == "\\x9b31m csi and é ü ✓"  # C1 escaped, text kept


def test_last_words_are_escaped():
    result = CommandResult("x", 1, "", "fine\n\x1b]0;pwned\x07last\n")
    assert result.last_words == "\\x1b]0;pwned\\x07last"


def test_a_hosts_escape_sequences_reach_the_error_message_escaped(tmp_path):
    class Host:
        name = "a"

    async def scenario():
        server = await CommandServer(tmp_path).start()
        transport = AsyncsshTransport()
        session = await transport.connect(target_for(server), timeout=10)

        class Pool:
            async def session(self, host, *, on_connect=None):
                return session

        run = HostRun(Host(), [], None, Pool(), RunLimits(), "t")  # type: ignore[arg-type]
        try:
            await run.run(r"printf '\033[2J\033[HALL HOSTS OK'; exit 3", check=True)
        except CommandError as exc:
            return str(exc)
        finally:
            await session.close()
            await server.close()

    message = asyncio.run(scenario())
    assert message == "a: exit status 3: \\x1b[2J\\x1b[HALL HOSTS OK"
    assert "\x1b" not in message


def test_tables_keep_a_hosts_text_on_its_own_line_and_escaped():
    from fleet.core.output import render_host_table

    text = render_host_table("setup", [("a", "failed", "bad\n\x1b[2Jb  ok  ALL HOSTS OK"),
                                       ("b", "ok", "fine")], {"ok": 1, "failed": 1}, 0.1)
    lines = text.splitlines()
    assert len(lines) == 3 and "\x1b" not in text
    assert lines[0].startswith("a  failed  bad\\n\\x1b[2Jb  ok  ALL HOSTS OK")
