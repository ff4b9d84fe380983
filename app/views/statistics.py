"""Statistics (集計, F4.1): choose what to count, the unit of the periods, the range and a
breakdown; a table, a chart drawn here as SVG, and CSV / XLSX downloads (audited). Every
figure comes from app/services/statistics.py; these GETs only read (a download adds its
audit record)."""
from __future__ import annotations

from datetime import date

from flask import Response, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _

from app import clock
from app.clock import JST
from app.extensions import session
from app.services import export_policy, protected_zip, statistics
from app.services.errors import DomainError, InputError
from app.views import charts, protected_exports
from app.views.feedback import flash_refusal


# written above the value axis of the chart
_CHART_UNITS = {statistics.COUNT: lambda: _("(number)"), statistics.YEN: lambda: _("(yen)")}


def _today() -> date:
    return clock.now().astimezone(JST).date()


class StatisticsView(BaseView):
    route_base = "/statistics"
    default_view = "index"

    def _query(self):
        return statistics.parse_query(request.args, _today())

    def _page(self, query=None, error=None, status=200):
        rep = grid = chart = stock = None
        title = printed_at = ""
        if query is not None:
            rep = statistics.report(session(), query, clock.now())
            grid = statistics.grid(rep)
            categories, series, percent = statistics.chart_series(rep)
            title = _("%(figure)s, %(period)s", figure=rep.measure.label, period=rep.period_text)
            desc = _("%(unit)s chart of %(figure)s (%(breakdown)s); the table below has the "
                     "same figures.", unit=statistics.UNIT_LABELS[query.unit],
                     figure=rep.measure.label, breakdown=rep.breakdown.label)
            if query.unit == statistics.DAY and query.start.year == query.end.year:
                categories = [c[5:] for c in categories]  # 12/01: the year is in the title
            chart = charts.chart(title, desc, categories, series, percent=percent,
                                 unit=_CHART_UNITS.get(rep.measure.kind, lambda: "")())
            printed_at = rep.generated_at.astimezone(JST).strftime("%Y/%m/%d %H:%M")
            if query.stock_day:
                stock = statistics.stock(session(), query.stock_day)
        shown = query or statistics.Query(request.args.get("subject")
                                          if request.args.get("subject") in statistics.SUBJECTS
                                          else "bookings", statistics.DAY,
                                          *statistics.this_month(_today()))
        return self.render_template(
            "statistics/index.html", query=query, shown=shown, error=error, report=rep,
            grid=grid, chart=chart, chart_title=title, printed_at=printed_at,
            stock=stock,
            subjects=statistics.SUBJECTS, subject=statistics.SUBJECTS[shown.subject], breakdowns=statistics.BREAKDOWNS,
            units=statistics.UNIT_LABELS, quick=self._quick(shown),
            fmt=statistics.format_value, form=request.args,
            encryption_required=protected_exports.encryption_required("statistics")), status

    @staticmethod
    def _quick(shown) -> list[tuple[object, str]]:
        """今月, 先月, 今年度, 前年度: the same subject and breakdown over that range."""
        links = []
        for label, unit, start, end in statistics.quick_ranges(_today()):
            args = {k: v for k, v in shown.args(unit=unit, start=start.isoformat(),
                                                end=end.isoformat()).items()
                    if k != "stock_day"}
            links.append((label, url_for("StatisticsView.index", **args)))
        return links

    @expose("/")
    @has_access
    def index(self):
        """The figures of the chosen subject, period and breakdown (this month by day)."""
        try:
            query = self._query()
        except InputError as refused:
            return self._page(error=str(refused.message), status=400)
        return self._page(query)

    def _download(self, build, file_format: str, mimetype: str, extension: str):
        """A GET gives the plain file; the form posts here (same query in the URL) with
        「暗号化ZIPで出力する」 for an AES-256 ZIP shown on a page with its password."""
        try:
            query = self._query()
        except InputError as refused:
            return self._page(error=str(refused.message), status=400)
        try:
            chosen = (protected_exports.choice() if request.method == "POST"
                      else export_policy.PLAIN)
        except DomainError as refused:
            flash_refusal(refused)
            return redirect(url_for(".index", **query.args()))
        data, rows = build(query)
        statistics.record_download(session(), query, file_format, rows,
                                   encrypted=chosen.encrypt)
        name = (f"statistics_{query.subject}_{query.unit}_{query.start:%Y%m%d}-"
                f"{query.end:%Y%m%d}_{query.breakdown}.{extension}")
        if chosen.encrypt:
            return protected_exports.offer(self, [protected_zip.Part(name, data)], chosen,
                                           name, back=url_for(".index", **query.args()))
        return Response(data, mimetype=mimetype,
                        headers={"Content-Disposition": f"attachment; filename={name}"})

    @expose("/csv", methods=["GET", "POST"])
    @has_access
    def csv(self):
        """The chosen breakdown as CSV (UTF-8 with BOM, CRLF)."""
        def build(query):
            rep = statistics.report(session(), query, clock.now())
            return statistics.csv_bytes(rep), len(statistics.long_rows(rep)[1])
        return self._download(build, "csv", "text/csv; charset=utf-8", "csv")

    @expose("/xlsx", methods=["GET", "POST"])
    @has_access
    def xlsx(self):
        """Every breakdown of the subject, one sheet each (and the stock of cards)."""
        return self._download(
            lambda query: statistics.xlsx_bytes(session(), query, clock.now()), "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
