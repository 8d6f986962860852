import { MemoryUsageStore } from './usageMemory.ts';
import { usageStoreSuite } from './usage.suite.ts';

usageStoreSuite('memory', async () => {
  // Stores of one harness share one backend: one map per retention is enough for the suite.
  const stores = new Map<number, MemoryUsageStore>();
  return {
    open: async (retentionDays) => {
      let s = stores.get(retentionDays);
      if (!s) stores.set(retentionDays, s = new MemoryUsageStore({ retentionDays }));
      return s;
    },
    close: async () => undefined,
  };
});
