#!/usr/bin/env python3
"""Generates the Grafana dashboards of deploy/grafana/dashboards (the JSON files are committed).

  python3 deploy/tools/gen_dashboards.py [OUT_DIR]

Edit the panels here, regenerate, commit both; deploy/tools/check_deploy.py fails when the JSON
differs from what this script makes.
"""
import json, os, sys
from pathlib import Path
DS = {"type": "prometheus", "uid": "braid-prometheus"}
OUT = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[1] / "grafana/dashboards")
RI = "$__rate_interval"

def dashboard(uid, title, description, rows, variables=()):
    panels = []; pid = 1; y = 0
    for row_title, row_panels in rows:
        panels.append({"type": "row", "id": pid, "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1; y += 1; x = 0
        for p in row_panels:
            w = p.pop("w", 12); h = p.pop("h", 8)
            if x + w > 24: x = 0; y += h
            p.update({"id": pid, "gridPos": {"h": h, "w": w, "x": x, "y": y}, "datasource": DS})
            for i, t in enumerate(p["targets"]):
                t.setdefault("refId", chr(ord("A") + i)); t["datasource"] = DS
            panels.append(p); pid += 1; x += w
        y += 8
    templ = []
    for name, q in variables:
        templ.append({"name": name, "label": name, "type": "query", "datasource": DS,
                      "query": {"query": q, "refId": "var"}, "definition": q, "refresh": 2,
                      "includeAll": True, "multi": True, "allValue": ".*",
                      "current": {"selected": True, "text": "All", "value": "$__all"}, "sort": 1})
    return {"uid": uid, "title": title, "description": description, "tags": ["braid"],
            "timezone": "browser", "editable": True, "graphTooltip": 1, "schemaVersion": 39,
            "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": templ}, "annotations": {"list": []}, "links": [
                {"type": "dashboards", "tags": ["braid"], "asDropdown": True, "title": "Braid"}],
            "panels": panels}

def ts(title, targets, unit="short", w=12, desc="", stack=False, minv=None, maxv=None):
    p = {"type": "timeseries", "title": title, "description": desc, "w": w,
         "targets": [{"expr": e, "legendFormat": l} for e, l in targets],
         "fieldConfig": {"defaults": {"unit": unit, "custom": {"fillOpacity": 10,
                         "stacking": {"mode": "normal" if stack else "none"}}}, "overrides": []},
         "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
                     "tooltip": {"mode": "multi", "sort": "desc"}}}
    if minv is not None: p["fieldConfig"]["defaults"]["min"] = minv
    if maxv is not None: p["fieldConfig"]["defaults"]["max"] = maxv
    return p

def stat(title, expr, unit="short", w=6, desc="", legend="", thresholds=None):
    steps = thresholds or [{"color": "green", "value": None}]
    return {"type": "stat", "title": title, "description": desc, "w": w, "h": 5,
            "targets": [{"expr": expr, "legendFormat": legend, "instant": True}],
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}}

TT = 'task_type=~"$task_type"'
def hq(q, metric, by="", sel=""):
    b = f"le{', ' + by if by else ''}"
    return f"histogram_quantile({q}, sum by ({b}) (rate({metric}_bucket{{{sel}}}[{RI}])))"

overview = dashboard("braid-overview", "Braid / Overview",
    "Throughput, success, queue lag and schedule-to-start latency of a Braid deployment.",
    [("Now", [
        stat("Control planes up", 'sum(up{job="braid"})', w=4,
             thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]),
        stat("Active runs", "sum(braid_runs_started_total) - sum(braid_runs_finished_total)", w=4,
             desc="Runs started minus runs finished, summed over control planes (exact while no control plane restarted in the range of its counters)."),
        stat("Task success (1h)", 'sum(rate(braid_tasks_finished_total{outcome="succeeded"}[1h])) / sum(rate(braid_tasks_finished_total{outcome=~"succeeded|failed"}[1h]))',
             unit="percentunit", w=4, desc="SLO: 99.5% of finished tasks (succeeded or failed) succeed.",
             thresholds=[{"color": "red", "value": None}, {"color": "orange", "value": 0.99}, {"color": "green", "value": 0.995}]),
        stat("Started within 1 s (1h)", "1 - braid:task_schedule_to_start_slow:ratio_rate1h", unit="percentunit", w=4,
             desc="SLO: 99% of tasks start within 1 s of becoming ready.",
             thresholds=[{"color": "red", "value": None}, {"color": "orange", "value": 0.98}, {"color": "green", "value": 0.99}]),
        stat("Workers connected", "sum(braid_workers_connected)", w=4,
             thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]),
        stat("Max queue lag", "max(braid_queue_lag_seconds)", unit="s", w=4,
             thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 10}, {"color": "red", "value": 60}]),
    ]),
    ("Throughput", [
        ts("Runs started / finished", [(f"sum(rate(braid_runs_started_total[{RI}]))", "started"),
                                        (f"sum by (outcome) (rate(braid_runs_finished_total[{RI}]))", "finished {{outcome}}")], unit="ops"),
        ts("Tasks finished by outcome", [(f"sum by (outcome) (rate(braid_tasks_finished_total[{RI}]))", "{{outcome}}")], unit="ops", stack=True),
        ts("Success rate", [(f'sum(rate(braid_tasks_finished_total{{outcome="succeeded"}}[{RI}])) / sum(rate(braid_tasks_finished_total{{outcome=~"succeeded|failed"}}[{RI}]))', "tasks"),
                            (f'sum(rate(braid_runs_finished_total{{outcome="succeeded"}}[{RI}])) / sum(rate(braid_runs_finished_total{{outcome=~"succeeded|failed"}}[{RI}]))', "runs")],
           unit="percentunit", minv=0, maxv=1),
        ts("Active runs", [("sum(braid_runs_started_total) - sum(braid_runs_finished_total)", "active")]),
    ]),
    ("Latency and lag", [
        ts("Schedule-to-start p50 / p99", [(hq(0.5, "braid_task_schedule_to_start_seconds"), "p50"),
                                            (hq(0.99, "braid_task_schedule_to_start_seconds"), "p99")], unit="s"),
        ts("Queue lag by task type", [("max by (task_type) (braid_queue_lag_seconds)", "{{task_type}}")], unit="s",
           desc="Age of the oldest ready task per queue. Alert BraidQueueLagHigh over 60 s."),
        ts("Task execution p50 / p99", [(hq(0.5, "braid_task_execution_seconds"), "p50"),
                                         (hq(0.99, "braid_task_execution_seconds"), "p99")], unit="s"),
        ts("SLO error ratios", [("braid:task_schedule_to_start_slow:ratio_rate1h", "started late (1h)"),
                                ("braid:task_schedule_to_start_slow:ratio_rate6h", "started late (6h)"),
                                ("braid:task_failures:ratio_rate1h", "failed (1h)"),
                                ("braid:task_failures:ratio_rate6h", "failed (6h)")], unit="percentunit",
           desc="From the recording rules in deploy/prometheus/rules/recording.yml. Budgets: 1% late, 0.5% failed."),
    ]),
    ("Deployment", [
        ts("Build info", [("count by (version) (braid_build_info)", "{{version}}")], desc="Control planes per version."),
        ts("Cron ticks", [(f"sum by (outcome) (rate(braid_cron_ticks_total[{RI}]))", "{{outcome}}")], unit="ops"),
    ])])

queues = dashboard("braid-queues-workers", "Braid / Queues and workers",
    "Queue depth and lag per task type, worker slots, heartbeats and worker-side handler metrics.",
    [("Queues", [
        ts("Queue depth", [(f"max by (task_type) (braid_queue_depth{{{TT}}})", "{{task_type}}")], desc="Ready tasks per task type."),
        ts("Queue lag", [(f"max by (task_type) (braid_queue_lag_seconds{{{TT}}})", "{{task_type}}")], unit="s", desc="Age of the oldest ready task."),
        ts("Schedule-to-start p99 by task type", [(hq(0.99, "braid_task_schedule_to_start_seconds", "task_type", TT), "{{task_type}}")], unit="s"),
        ts("Execution p99 by task type", [(hq(0.99, "braid_task_execution_seconds", "task_type", TT), "{{task_type}}")], unit="s"),
        ts("Reconciler republishes", [(f"sum(rate(braid_reconciler_republished_total[{RI}]))", "republished")], unit="ops",
           desc="Ready tasks published to the queue again (after Redis lost entries, or a slow consumer)."),
        ts("Leases expired", [(f"sum by (task_type) (rate(braid_leases_expired_total{{{TT}}}[{RI}]))", "{{task_type}}")], unit="ops"),
    ]),
    ("Workers", [
        ts("Workers connected", [("sum(braid_workers_connected)", "all"), ("braid_workers_connected", "{{instance}}")]),
        ts("Worker slots", [(f"sum by (task_type, state) (braid_worker_slots{{{TT}}})", "{{task_type}} {{state}}")], stack=True),
        ts("Slot utilisation", [(f'sum by (task_type) (braid_worker_slots{{state="used",{TT}}}) / sum by (task_type) (braid_worker_slots{{{TT}}})', "{{task_type}}")],
           unit="percentunit", minv=0, maxv=1),
        ts("Heartbeats received", [(f'sum by (instance) (rate(braid_worker_heartbeats_total{{job="braid"}}[{RI}]))', "{{instance}}")], unit="ops",
           desc="Heartbeats the control planes received (job braid). worker-rs exports a counter of the same name for heartbeats sent, hence the job filter."),
    ]),
    ("Worker side (worker-rs metrics port)", [
        ts("Tasks handled", [(f"sum by (task_type, outcome) (rate(braid_worker_tasks_total{{{TT}}}[{RI}]))", "{{task_type}} {{outcome}}")], unit="ops"),
        ts("Handler duration p50 / p99", [(hq(0.5, "braid_worker_handler_duration_seconds", "task_type", TT), "p50 {{task_type}}"),
                                           (hq(0.99, "braid_worker_handler_duration_seconds", "task_type", TT), "p99 {{task_type}}")], unit="s"),
    ])],
    variables=[("task_type", "label_values(braid_queue_depth, task_type)")])

failures = dashboard("braid-failures", "Braid / Failures",
    "Retries, failed attempts, dead letters and failed runs.",
    [("Dead letters", [
        ts("Dead letters waiting by workflow", [("max by (workflow) (braid_dead_letters)", "{{workflow}}")],
           desc="Tasks that ran out of attempts and wait for redrive or purge (`braid dlq list`)."),
        ts("Dead-lettered by workflow", [(f"sum by (workflow) (increase(braid_dead_letters_total[{RI}]))", "{{workflow}}")],
           desc="Alert BraidDeadLettersGrowing fires when this grows."),
        ts("Dead-lettered by workflow and error type", [(f"sum by (workflow, error_type) (increase(braid_dead_letters_total[{RI}]))", "{{workflow}} {{error_type}}")],
           desc="The error type the worker reported (at most 32 distinct values per control plane; the rest count as `other`)."),
    ]),
    ("Attempts and retries", [
        ts("Failed attempts by task type", [(f'sum by (task_type, outcome) (rate(braid_task_attempts_total{{outcome=~"failed|lease_expired"}}[{RI}]))', "{{task_type}} {{outcome}}")], unit="ops"),
        ts("Attempt failure ratio by task type", [(f'sum by (task_type) (rate(braid_task_attempts_total{{outcome=~"failed|lease_expired"}}[{RI}])) / sum by (task_type) (rate(braid_task_attempts_total[{RI}]))', "{{task_type}}")],
           unit="percentunit", minv=0, maxv=1),
        ts("Retries by task type", [(f"sum by (task_type) (rate(braid_task_retries_total[{RI}]))", "{{task_type}}")], unit="ops"),
        ts("Leases expired by task type", [(f"sum by (task_type) (rate(braid_leases_expired_total[{RI}]))", "{{task_type}}")], unit="ops"),
        ts("Stale results rejected", [(f"sum(rate(braid_stale_results_total[{RI}]))", "stale")], unit="ops",
           desc="Results whose lease was no longer current (fencing)."),
        ts("Tasks not succeeded by task type", [(f'sum by (task_type, outcome) (rate(braid_tasks_finished_total{{outcome!="succeeded"}}[{RI}]))', "{{task_type}} {{outcome}}")], unit="ops"),
    ]),
    ("Runs", [
        ts("Runs failed or cancelled by workflow", [(f'sum by (workflow, outcome) (rate(braid_runs_finished_total{{outcome!="succeeded"}}[{RI}]))', "{{workflow}} {{outcome}}")], unit="ops"),
        ts("Retention deletes", [(f"sum by (kind) (rate(braid_retention_deleted_total[{RI}]))", "{{kind}}")], unit="ops"),
    ])])

api = dashboard("braid-api", "Braid / API",
    "gRPC requests to the control planes: rate, errors and latency by method.",
    [("Traffic", [
        ts("Requests by method", [(f"sum by (service, method) (rate(braid_grpc_requests_total[{RI}]))", "{{service}}/{{method}}")], unit="reqps", w=24),
        ts("Errors by method and code", [(f'sum by (method, code) (rate(braid_grpc_requests_total{{code!="OK"}}[{RI}]))', "{{method}} {{code}}")], unit="reqps"),
        ts("Error ratio by method", [(f'sum by (method) (rate(braid_grpc_requests_total{{code!="OK"}}[{RI}])) / sum by (method) (rate(braid_grpc_requests_total[{RI}]))', "{{method}}")],
           unit="percentunit", minv=0, maxv=1),
    ]),
    ("Latency", [
        ts("p50 by method", [(hq(0.5, "braid_grpc_request_duration_seconds", "service, method"), "{{service}}/{{method}}")], unit="s"),
        ts("p99 by method", [(hq(0.99, "braid_grpc_request_duration_seconds", "service, method"), "{{service}}/{{method}}")], unit="s"),
        ts("Requests by control plane", [(f"sum by (instance) (rate(braid_grpc_requests_total[{RI}]))", "{{instance}}")], unit="reqps", w=24),
    ])])

os.makedirs(OUT, exist_ok=True)
for name, d in [("overview", overview), ("queues-workers", queues), ("failures", failures), ("api", api)]:
    with open(f"{OUT}/braid-{name}.json", "w") as f:
        json.dump(d, f, indent=2); f.write("\n")

