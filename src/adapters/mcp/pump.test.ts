import { describe, expect, it } from "vitest";
import { NotificationPump, notificationKey } from "./pump.js";

/** A send that stays pending until released, like a write to a full pipe. */
function blockedSends() {
  const sent: string[] = [];
  const waiting: Array<() => void> = [];
  const send = (name: string) => () => {
    sent.push(name);
    return new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = async () => {
    while (waiting.length) {
      for (const resolve of waiting.splice(0)) resolve();
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { sent, send, release };
}

describe("NotificationPump", () => {
  it("sends at once while the transport keeps up", async () => {
    const pump = new NotificationPump();
    const sent: number[] = [];
    for (let i = 0; i < 100; i++)
      pump.push(async () => {
        sent.push(i);
      });
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent.length).toBe(100);
    expect(pump.stats).toEqual({ forwarded: 100, coalesced: 0, dropped: 0 });
  });

  it("queues past the in-flight bound, drops the oldest past the queue bound, and keeps order", async () => {
    const pump = new NotificationPump({ maxInFlight: 2, maxQueued: 3 });
    const { sent, send, release } = blockedSends();
    for (let i = 0; i < 10; i++) pump.push(send(`n${i}`));
    expect(sent).toEqual(["n0", "n1"]);
    expect(pump.queued).toBe(3);
    await release();
    expect(sent).toEqual(["n0", "n1", "n7", "n8", "n9"]);
    expect(pump.stats).toEqual({ forwarded: 5, coalesced: 0, dropped: 5 });
  });

  it("keeps only the newest queued notification per key, and discards a key on request", async () => {
    const pump = new NotificationPump({ maxInFlight: 1 });
    const { sent, send, release } = blockedSends();
    pump.push(send("first"));
    for (let i = 1; i <= 5; i++) pump.push(send(`progress a ${i}`), "progress:a");
    pump.push(send("list"), "notifications/tools/list_changed");
    pump.push(send("list again"), "notifications/tools/list_changed");
    pump.push(send("progress b"), "progress:b");
    pump.discard("progress:b");
    await release();
    expect(sent).toEqual(["first", "progress a 5", "list again"]);
    expect(pump.stats).toEqual({ forwarded: 3, coalesced: 5, dropped: 1 });
  });
});

describe("notificationKey", () => {
  it.each([
    [{ method: "notifications/progress", params: { progressToken: 7 } }, "progress:7"],
    [{ method: "notifications/tools/list_changed" }, "notifications/tools/list_changed"],
    [{ method: "notifications/resources/updated", params: { uri: "file:///a" } }, "updated:file:///a"],
    [{ method: "notifications/message", params: { level: "info" } }, undefined],
  ])("%j -> %s", (notification, key) => {
    expect(notificationKey(notification)).toBe(key);
  });
});
