"""Intake throughput against a bare Flask endpoint doing one INSERT, and nothing lost.

Each round, on fresh databases: Conveyor (``wsgi:app``) and the bare app
(``bare_app.py``) under the same gunicorn settings, hit by the same client with the
same posts (``--posts``, 10 % of them repeating an earlier post's Idempotency-Key),
one after the other (the order alternates between rounds). Then ``worker.py`` starts,
the lead builder drains the inbox, and every 2xx receipt is checked to be exactly one
lead. The figure is the median of the rounds' ratios.

    .venv/bin/python benchmarks/intake.py [--rounds 5] [--posts 10000] [--builder-during-load]

``--builder-during-load`` runs ``worker.py`` beside gunicorn while the posts arrive (the
builder then shares the two cores with the web workers).
"""

import sys

import harness as h

WARMUP = 200


def load(runs: list, posts: list[h.Request], args) -> dict:
    """Send the posts to each app in turn, a slice at a time (so that both meet the same
    background load on this shared machine); throughput, latency, CPU per post."""
    for _, proc, _ in runs:
        h.send(proc.port, h.intake_posts(posts[0].path, WARMUP, 0.0), args.concurrency)
    results = {name: {"answers": [], "wall": 0.0, "cpu": {}} for name, _, _ in runs}
    size = -(-len(posts) // args.slices)
    for number, first in enumerate(range(0, len(posts), size)):
        for name, proc, db in runs if number % 2 else runs[::-1]:
            result = results[name]
            with h.CpuMeter({name: proc.pid, "worker": args.worker_pid}, db.dsn) as cpu:
                answers, wall = h.send(
                    proc.port, posts[first : first + size], args.concurrency, seconds=args.seconds
                )
            result["answers"] += answers
            result["wall"] += wall
            for key, seconds in cpu.seconds.items():
                result["cpu"][key] = result["cpu"].get(key, 0.0) + seconds
    for name, result in results.items():
        answers = result["answers"]
        ms = [1000 * a.seconds for a in answers if a.status in (200, 201, 202)]
        statuses: dict = {}
        for a in answers:
            statuses[a.status] = statuses.get(a.status, 0) + 1
        cpu = {k: 1000 * v / len(answers) for k, v in result["cpu"].items()}
        result.update(
            rate=len(answers) / result["wall"],
            p50=h.percentile(ms, 0.5),
            p99=h.percentile(ms, 0.99),
            statuses=statuses,
            cpu_ms=cpu,
            server_ms=cpu[name] + cpu["postgres"],
        )
        h.log(
            f"{name}: {result['rate']:.0f} posts/s, p50 {result['p50']:.1f} ms, p99 "
            f"{result['p99']:.1f} ms; {statuses}; CPU ms/post: "
            + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        )
    return results


def one_round(number: int, args, logdir) -> dict:
    with h.Database("intake") as db, h.Database("bare") as bare_db:
        h.flush_redis()
        env = h.app_env(db.dsn)
        workspace = h.set_up_workspace(env)
        web = h.gunicorn("conveyor", "wsgi:app", env, logdir, args.workers)
        bare = h.bare_app(bare_db.dsn, logdir, args.workers)
        builder = h.worker(env, logdir, f"worker-{number}")
        try:
            web.start()
            bare.start()
            args.worker_pid = -1
            if args.builder_during_load:
                args.worker_pid = builder.start(health=None).pid
            posts = h.intake_posts(workspace["path"], args.posts, args.repeat_share)
            runs = [("conveyor", web, db), ("bare", bare, bare_db)]
            results = load(runs if number % 2 else runs[::-1], posts, args)
            if not args.builder_during_load:
                builder.start(health=None)
            drained = h.wait_built(db, workspace["tenant_id"], args.build_seconds)
            check = h.check_leads(db, workspace["tenant_id"], results["conveyor"]["answers"])
            errors = web.log_count("Traceback") + builder.log_count("Traceback")
        finally:
            for proc in (builder, web, bare):
                proc.stop()
        h.flush_redis()
    conveyor, baseline = results["conveyor"], results["bare"]
    ratio = conveyor["rate"] / baseline["rate"]
    cpu_ratio = baseline["server_ms"] / conveyor["server_ms"]
    h.log(
        f"round {number}: ratio {ratio:.2f} (CPU per post, server + PostgreSQL: "
        f"{conveyor['server_ms']:.2f} / {baseline['server_ms']:.2f} ms = {cpu_ratio:.2f}); "
        f"builder drained the inbox {drained:.1f} s after "
        f"the load; {check}; tracebacks {errors}"
    )
    return {
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "conveyor": conveyor,
        "bare": baseline,
        "check": check,
        "drained": drained,
        "errors": errors,
    }


def main() -> int:
    parser = h.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--repeat-share", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--slices", type=int, default=5, help="turns each app takes")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--seconds", type=float, default=120, help="bound on one load")
    parser.add_argument("--build-seconds", type=float, default=180)
    parser.add_argument("--builder-during-load", action="store_true")
    args = parser.parse_args()
    h.log(f"machine busy before the run: {100 * h.machine_busy():.0f} %")
    with h.workdir("intake", args.ref) as logdir:
        rounds = [one_round(n, args, logdir) for n in range(1, args.rounds + 1)]
    ratio = h.median(r["ratio"] for r in rounds)
    lost = sum(r["check"]["lost"] for r in rounds)
    duplicated = sum(r["check"]["duplicated"] + r["check"]["split"] for r in rounds)
    unanswered = sum(r["check"]["unanswered"] for r in rounds)
    accepted = sum(r["check"]["receipts"] for r in rounds)
    rate = h.median(r["conveyor"]["rate"] for r in rounds)
    bare = h.median(r["bare"]["rate"] for r in rounds)
    ratios = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
    build = h.median(r["check"]["receipts"] / max(0.1, r["drained"]) for r in rounds)
    during = "builder running during the load" if args.builder_during_load else "builder after"
    h.report(
        [
            h.Figure(
                "intake",
                h.command(),
                f"{rate:.0f} posts/s ({during}); p50 "
                f"{h.median(r['conveyor']['p50'] for r in rounds):.1f} ms, p99 "
                f"{h.median(r['conveyor']['p99'] for r in rounds):.1f} ms; rounds: {ratios}",
                f"bare Flask + 1 INSERT {bare:.0f} posts/s",
                f"**{ratio:.2f}**",
                "≥ 0.85",
                ratio >= 0.85,
            ),
            h.Figure(
                "intake: nothing lost",
                h.command(),
                f"{accepted:,} receipts: {lost} lost, {duplicated} duplicated, "
                f"{unanswered} not 2xx",
                "",
                "",
                "0 / 0",
                lost == duplicated == unanswered == 0,
            ),
        ],
        [
            "CPU ms per post (medians), Conveyor: "
            + ", ".join(
                f"{k} {h.median(r['conveyor']['cpu_ms'][k] for r in rounds):.2f}"
                for k in rounds[0]["conveyor"]["cpu_ms"]
            )
            + "; bare: "
            + ", ".join(
                f"{k} {h.median(r['bare']['cpu_ms'][k] for r in rounds):.2f}"
                for k in rounds[0]["bare"]["cpu_ms"]
            )
            + f". Bare / Conveyor CPU per post (server + PostgreSQL), median "
            f"{h.median(r['cpu_ratio'] for r in rounds):.2f}: the throughput ratio on an idle "
            "machine, where both are CPU-bound.",
            f"The builder drained each round's inbox at ~{build:.0f} posts/s (median, from the "
            "worker's start, with its start-up).",
            f"Tracebacks in the logs: {sum(r['errors'] for r in rounds)}.",
        ],
    )
    return 0 if ratio >= 0.85 and not (lost or duplicated or unanswered) else 1


if __name__ == "__main__":
    sys.exit(main())
