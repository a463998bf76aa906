"""Okta's cursor pagination for a simulated org: `limit` (clamped to each list's default and
maximum), the `after` cursor (the last id of the page before, in id order) and the two `Link`
headers, self then next, that every list answers with.

`OktaPaging` is a base class of `OktaSimulator`: the list handlers there page through
`_paged(...)`, and the System Log's handler uses `_limit` and `_links` with its own cursor.
Kept apart from `simulators.okta` so that its handlers say what each list holds, and this
module how any list is cut into pages.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from urllib.parse import urlencode

from simulators.base import SimulatorServer
from simulators.messages import Headers, Request, Response
from simulators.okta_filter import FilterError

__all__ = ["OktaPaging"]


class OktaPaging(SimulatorServer):
    """Pages of a list of ids, for the handlers of `OktaSimulator`, its subclass."""

    def _limit(self, request: Request, default: int, maximum: int) -> int:
        raw = request.arg("limit")
        if raw is None:
            return default
        try:
            return max(1, min(int(raw), maximum))
        except ValueError:
            raise FilterError("limit must be a number") from None

    def _links(self, request: Request, next_after: str | None) -> Headers:
        host = request.headers.get("host") or f"127.0.0.1:{self.port}"
        base = f"https://{host}{request.path}"
        headers = [("Link", f'<{base}{"?" + request.raw_query if request.raw_query else ""}>; rel="self"')]
        if next_after is not None:
            query = [(k, v) for k, values in request.query.items() if k != "after" for v in values]
            query.append(("after", next_after))
            headers.append(("Link", f'<{base}?{urlencode(query)}>; rel="next"'))
        return headers

    @staticmethod
    def _scan(ids: list[str], after: str | None, limit: int, keep: Callable[[str], bool]) -> tuple[list[str], bool]:
        """Up to `limit` ids after the cursor that `keep` accepts, and whether more follow."""
        start = bisect.bisect_right(ids, after) if after else 0
        found: list[str] = []
        for position in range(start, len(ids)):
            candidate = ids[position]
            if keep(candidate):
                if len(found) == limit:
                    return found, True
                found.append(candidate)
        return found, False

    def _paged(self, request: Request, ids: list[str], default: int, maximum: int,
               keep: Callable[[str], bool], render: Callable[[str], bytes]) -> Response:
        limit = self._limit(request, default, maximum)
        page, more = self._scan(ids, request.arg("after"), limit, keep)
        body = b"[" + b",".join(render(i) for i in page) + b"]"
        headers: Headers = [("Content-Type", "application/json")]
        headers += self._links(request, page[-1] if more and page else None)
        return Response(200, headers, body)
