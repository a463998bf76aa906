"""The simulators' test CA: the certificate a simulator serves, and the CA its clients trust.

`test_ca()` makes one trustme CA per process, with a certificate for 127.0.0.1 and
localhost, and writes the CA to a temporary PEM file (`TestCA.ca_path`, removed when the
process exits); `TestCA.server_context()` is the server `ssl.SSLContext`;
`TestCA.client_context()` trusts the test CA only. `persistent_ca(directory)` loads the CA
kept in `directory` (or makes one and keeps it there), for a simulator whose clients must
trust it across restarts; `SimulatorServer.use_ca(ca)` before `start()` makes a server use it.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing.util
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme

__all__ = ["TestCA", "persistent_ca", "test_ca"]


@dataclass(frozen=True)
class TestCA:
    """A process-wide test CA and a server certificate for 127.0.0.1 and localhost."""

    __test__ = False  # not a pytest test class despite the name

    ca: trustme.CA
    cert: trustme.LeafCert
    ca_path: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (and nothing else)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@functools.cache
def test_ca() -> TestCA:
    """The one test CA of this process; its PEM is written once to a temporary file,
    removed when the process exits."""
    ca = trustme.CA()
    directory = Path(tempfile.mkdtemp(prefix="dirsync-simulator-ca-"))
    atexit.register(_remove_in_process, os.getpid(), directory)
    # A multiprocessing child (a bench's simulator process) ends with os._exit, past
    # atexit; its finalizers still run when its target returns.
    multiprocessing.util.Finalize(None, _remove_in_process, args=(os.getpid(), directory), exitpriority=0)
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return TestCA(ca=ca, cert=ca.issue_cert("127.0.0.1", "localhost"), ca_path=str(ca_path))


def _remove_in_process(pid: int, directory: Path) -> None:
    if os.getpid() == pid:  # not from a forked child that exits normally
        shutil.rmtree(directory, ignore_errors=True)


def persistent_ca(directory: Path) -> TestCA:
    """The CA kept in `directory` (`ca.pem`, `ca-key.pem`), made and written there first if
    absent, so clients that trust `ca.pem` keep trusting the server after a restart."""
    ca_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if ca_path.exists() and key_path.exists():
        ca = trustme.CA.from_pem(ca_path.read_bytes(), key_path.read_bytes())
    else:
        ca = trustme.CA()
        directory.mkdir(parents=True, exist_ok=True)
        key_path.touch(mode=0o600)
        ca.private_key_pem.write_to_path(str(key_path))
        ca.cert_pem.write_to_path(str(ca_path))
    return TestCA(ca=ca, cert=ca.issue_cert("127.0.0.1", "localhost"), ca_path=str(ca_path))


test_ca.__test__ = False  # type: ignore[attr-defined]
