import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Verdict } from "../core/index.js";

/** What the metrics read on each scrape. */
export interface MetricsSources {
  policy(): { name: string; hash: string };
  pendingApprovals(): Promise<number>;
  auditQueued(): number;
  /** Event stream clients connected, and dropped so far for falling behind. */
  eventClients?(): { connected: number; dropped: number };
}

/** Prometheus metrics of one server: its own registry, so several servers in one process do not mix. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #decisions: Counter<"verdict">;
  readonly #latency: Histogram;
  readonly #reloads: Counter<"result">;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.#decisions = new Counter({
      name: "toolwarden_decisions_total",
      help: "Decisions made through the API, by verdict.",
      labelNames: ["verdict"],
      registers,
    });
    for (const verdict of ["allow", "flag", "ask", "deny"]) this.#decisions.inc({ verdict }, 0);
    this.#latency = new Histogram({
      name: "toolwarden_decide_duration_seconds",
      help: "Time to decide a call (policy, limits, approvals, audit), without waiting for a human.",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.#reloads = new Counter({
      name: "toolwarden_policy_changes_total",
      help: "Policy activations and rejected reloads.",
      labelNames: ["result"],
      registers,
    });
    new Gauge({
      name: "toolwarden_policy_info",
      help: "The active policy (value 1).",
      labelNames: ["name", "hash"],
      registers,
      collect() {
        const { name, hash } = sources.policy();
        this.reset();
        this.set({ name, hash }, 1);
      },
    });
    new Gauge({
      name: "toolwarden_approvals_pending",
      help: "Approvals waiting for a human.",
      registers,
      async collect() {
        this.set(await sources.pendingApprovals());
      },
    });
    if (sources.eventClients) {
      const clients = sources.eventClients;
      new Gauge({
        name: "toolwarden_event_clients",
        help: "Event stream (/v1/events) subscribers connected, including waiting decide calls.",
        registers,
        collect() {
          this.set(clients().connected);
        },
      });
      new Gauge({
        name: "toolwarden_event_clients_dropped",
        help: "Event stream clients dropped since start for letting over 1 MiB of events pile up.",
        registers,
        collect() {
          this.set(clients().dropped);
        },
      });
    }
    new Gauge({
      name: "toolwarden_audit_spooled_records",
      help: "Audit records queued on disk for a sink that is down.",
      registers,
      collect() {
        this.set(sources.auditQueued());
      },
    });
  }

  /** Counts one decision and its latency in seconds. */
  decided(verdict: Verdict, seconds: number): void {
    this.#decisions.inc({ verdict });
    this.#latency.observe(seconds);
  }

  policyChange(result: "activated" | "rejected"): void {
    this.#reloads.inc({ result });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
