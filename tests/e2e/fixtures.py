"""pytest fixtures of the end-to-end tests. Import the ones a test module needs:

    from e2e.fixtures import api_fixture, cluster_fixture, procs_fixture  # noqa: F401

* `api`: the API double in a thread of the test process (`ApiServerThread`: stop()/start()
  keep the port and the data, which a restart test needs);
* `cluster`: the official `kubernetes` client on it (`e2e.cluster.Cluster`);
* `procs`: a `ProcessGroup` in a short directory of its own (unix socket paths must stay
  under 108 bytes); every process is stopped at the end and the logs are copied to the
  test's `tmp_path` for inspection.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from akri.testing.apiserver import ApiServerThread
from e2e.cluster import Cluster
from e2e.procs import ProcessGroup


@pytest.fixture(name="api")
def api_fixture() -> Iterator[ApiServerThread]:
    with ApiServerThread(bookmark_interval=1.0) as server:
        yield server


@pytest.fixture(name="cluster")
def cluster_fixture(api: ApiServerThread) -> Iterator[Cluster]:
    c = Cluster(api.kubeconfig_path)
    yield c
    c.close()


@pytest.fixture(name="procs")
def procs_fixture(tmp_path: Path) -> Iterator[ProcessGroup]:
    workdir = Path(tempfile.mkdtemp(prefix="akri-e2e-", dir="/tmp"))
    group = ProcessGroup(workdir)
    try:
        yield group
    finally:
        group.close()
        for log in workdir.glob("*.log"):
            shutil.copy(log, tmp_path / log.name)
        shutil.rmtree(workdir, ignore_errors=True)
