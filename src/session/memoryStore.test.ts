import { MemorySessionStore } from './memoryStore.ts';
import { sessionStoreSuite } from './store.suite.ts';

sessionStoreSuite('memory', async () => {
  // Two "nodes" of one process share the one store.
  const store = new MemorySessionStore();
  return { open: async () => store, close: () => store.shutdown() };
});
