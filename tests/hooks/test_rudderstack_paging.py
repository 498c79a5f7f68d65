"""Control-plane lists are paged (``{<kind>: [...], "paging": {total, next}}``): the hooks read every page.

Reading only the first page made the migration miss an existing destination/source/connection in a large
workspace, and then create a second one (or hit a 409). Each list is served here in 3 pages.
"""

from __future__ import annotations

import pytest

from segment_rudderstack.hooks import ResponseFormatError, RudderStackHook


@pytest.fixture
def control(connect, fast) -> RudderStackHook:
    return RudderStackHook(connect("rudderstack_test"), **fast)


def _serve_three_pages(httpserver, kind: str, last_next):
    """Pages 1-3 of ``kind`` with 2, 2 and 1 items; the last page's ``next`` is ``last_next`` (or absent)."""
    ids = [f"{kind[:3]}_{n}" for n in range(1, 6)]
    pages = [ids[0:2], ids[2:4], ids[4:5]]
    for number, chunk in enumerate(pages, start=1):
        paging = {"total": len(ids)}
        if number < 3:
            paging["next"] = f"/v2/{kind}?page={number + 1}"
        elif last_next != "absent":
            paging["next"] = last_next
        query = "" if number == 1 else {"page": str(number)}
        httpserver.expect_request(f"/v2/{kind}", method="GET", query_string=query).respond_with_json(
            {kind: [{"id": i, "name": i} for i in chunk], "paging": paging}
        )
    return ids


@pytest.mark.parametrize("last_next", ["", None, "absent"])
@pytest.mark.parametrize("kind", ["destinations", "sources", "connections"])
def test_every_list_follows_next_to_the_end(control, httpserver, kind, last_next):
    ids = _serve_three_pages(httpserver, kind, last_next)

    listed = getattr(control, f"list_{kind}")()

    assert [item["id"] for item in listed] == ids
    pages = [entry[0].args.get("page") for entry in httpserver.log]
    assert pages == [None, "2", "3"]


def test_next_on_another_host_is_refused_without_sending_the_token(control, httpserver):
    httpserver.expect_request("/v2/sources").respond_with_json(
        {
            "sources": [{"id": "s1"}],
            "paging": {"total": 2, "next": "https://elsewhere.example/v2/sources?page=2"},
        }
    )
    with pytest.raises(ResponseFormatError, match="another host"):
        control.list_sources()
    assert len(httpserver.log) == 1


def test_a_next_that_repeats_a_page_stops_instead_of_looping(control, httpserver):
    httpserver.expect_request("/v2/connections").respond_with_json(
        {"connections": [{"id": "c1"}], "paging": {"total": 9, "next": "/v2/connections"}}
    )
    with pytest.raises(ResponseFormatError, match="repeats a page"):
        control.list_connections()


def test_a_malformed_paging_object_is_a_format_error(control, httpserver):
    httpserver.expect_request("/v2/destinations").respond_with_json({"destinations": [], "paging": "2"})
    with pytest.raises(ResponseFormatError, match="paging"):
        control.list_destinations()
