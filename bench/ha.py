"""Two app servers and failover (issue 16 §5), on a throwaway PostgreSQL cluster of its own
(bench/throwaway.py):

- booking throughput through nginx with two app instances (gunicorn as `make run` serves
  it, 2 workers x 4 threads each) as a ratio to one instance behind the same nginx
  configuration, same load (concurrent residents each going through the whole booking flow:
  who, venue, day, time held, contact, confirmation), same database;
- the failover drill (bench/ha_drill.py, shortened): time from stopping the primary hard to
  its promotion and to the first successful booking, failed requests and lost bookings.

On one machine both instances share its cores: the ratio says what a second instance adds
there, not what a second server adds (that one brings its own cores).
"""
from __future__ import annotations

import os
import shutil
import sys
import threading
import time

if __name__ == "__main__":  # `python bench/ha.py`: the bench modules are bench.*, from ROOT
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from bench import ha_drill  # noqa: E402
from bench.booking import Client, held_resident  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CLIENTS = int(os.environ.get("BENCH_HA_CLIENTS", "10"))


def booking_rate(port: int, venue: int, clients: int = CLIENTS,
                 seconds: float = SECONDS) -> tuple[float, int]:
    """Bookings per second through the whole flow with ``clients`` residents at once;
    also the requests that failed (5xx or no answer)."""
    stop = time.perf_counter() + seconds
    done = [0] * clients
    failed = [0] * clients

    def resident(index):
        day_path = None
        while time.perf_counter() < stop:
            try:
                client, form, day_path = held_resident(port, venue, day_path)
                status, location, _ = client.request("POST", "/reserve/book/bench/confirm",
                                                     form)
                if status == 302 and location.endswith("/reserve/done"):
                    done[index] += 1
                elif status >= 500:
                    failed[index] += 1
            except Exception:
                failed[index] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=resident, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - start), sum(failed)


def bench_ha(rows: list) -> None:
    rows.append(("what", "how", "result", "ratio / goal"))
    tmp = ha_drill.throwaway.temp_dir("mnc-bench-ha-")
    stack = ha_drill.Stack(tmp)
    try:
        ha_drill.build(stack, instances=2, standby=False, say=lambda *_: None)
        one, one_port = ha_drill.start_nginx(os.path.join(tmp, "nginx-one"),
                                             [stack.apps[0][0]])
        stack.more_nginx.append(one)
        roomy = stack.venues[0]
        Client(one_port).request("GET", f"/reserve/api/availability?venue={roomy}"
                                        "&purpose=bench")
        booking_rate(stack.nginx_port, roomy, seconds=1)  # warm both instances
        rates = {1: [], 2: []}
        failures = 0
        for instances, port in ((1, one_port), (2, stack.nginx_port),
                                (2, stack.nginx_port), (1, one_port)):
            rate, failed = booking_rate(port, roomy)
            rates[instances].append(rate)
            failures += failed
        single = sum(rates[1]) / len(rates[1])
        double = sum(rates[2]) / len(rates[2])
        cores = os.cpu_count()
        rows.append((f"bookings, {CLIENTS} residents at once, whole flow",
                     "1 instance behind nginx", f"{single:.1f}/s", ""))
        rows.append(("", "2 instances behind nginx", f"{double:.1f}/s",
                     f"{double / single:.2f}x ({cores} cores shared)"))
        rows.append(("", "requests failed", str(failures), "0"))
    finally:
        stack.close()
        shutil.rmtree(tmp, ignore_errors=True)
    result = ha_drill.run_drill(residents=4, clerks=1, before=4, gap=2, after=6,
                                say=lambda *_: None)
    first = result["first_booking_after_stop"]
    rows.append(("failover drill (primary stopped -m immediate)", "promotion",
                 f"{result['promote_seconds']:.1f} s after the stop", ""))
    rows.append(("", "first successful booking",
                 f"{first:.1f} s after the stop" if first is not None else "none",
                 "a booking"))
    rows.append(("", "requests failed at the database switch",
                 f"{result['failed_switch']} of {result['sent']} over "
                 f"{result['failed_seconds']:.1f} s ({result['failed_switch_how'] or '-'})",
                 "counted"))
    rows.append(("", "confirmed bookings lost / overbooked slots",
                 f"{len(result['missing'])} of {result['confirmed']} / "
                 f"{result['overbooked_slots']}", "0 / 0"))


if __name__ == "__main__":
    from bench.run import table

    found: list = []
    bench_ha(found)
    table(found[1:], found[0])
