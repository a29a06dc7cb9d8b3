"""Polls over HTTP: the results as CSV (instructors)."""
from __future__ import annotations

from server.http.base import BaseHandler
from server.polls.export import results_csv


class PollResultsCsvHandler(BaseHandler):
    async def get(self, message_id: str) -> None:
        actor = await self.authenticate()
        mid = self.path_id(message_id)
        by = self.get_query_argument("by", "option")
        body = await results_csv(self.deps.db, actor, mid, by)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="poll-{mid}-by-{by}.csv"')
        self.finish(body)
