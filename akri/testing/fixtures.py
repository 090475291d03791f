"""pytest fixtures for the API double. Import the ones a test module needs:

    from akri.testing.fixtures import apiserver_fixture, apiserver_thread_fixture  # noqa: F401

They provide the fixtures `apiserver` (async tests: an `ApiServer` in the test's event loop) and
`apiserver_thread` (sync tests, e.g. the official `kubernetes` client: an `ApiServerThread`). Both
expose `.url`, `.kubeconfig_path`, `.store` and `stop()`/`start()`; watch bookmarks come every second.

Needs pytest and pytest-asyncio: `pip install 'akri[testing]'`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from .apiserver import ApiServer, ApiServerThread


@pytest_asyncio.fixture(name="apiserver")
async def apiserver_fixture() -> AsyncIterator[ApiServer]:
    async with ApiServer(bookmark_interval=1.0) as api:
        yield api


@pytest.fixture(name="apiserver_thread")
def apiserver_thread_fixture() -> Iterator[ApiServerThread]:
    with ApiServerThread(bookmark_interval=1.0) as api:
        yield api
